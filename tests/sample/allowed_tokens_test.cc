// The grammar mask in the sampler: tokens outside SampleInput::allowed_tokens are never
// sampled, greedy or not, and sampling within the allowed set stays seeded.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/sample/processors.h"
#include "engine/sample/sampler.h"

namespace herd {
namespace {

TEST(AllowedTokens, MaskClearsEveryTokenOutsideTheBitset) {
  std::vector<float> row(130, 1.0f);
  std::vector<uint64_t> bits(2, 0);  // only covers ids < 128: 128 and 129 are masked too
  bits[0] = (uint64_t(1) << 3) | (uint64_t(1) << 63);
  bits[1] = uint64_t(1) << 5;  // id 69
  apply_allowed_tokens(row, bits);
  for (size_t i = 0; i < row.size(); ++i)
    EXPECT_EQ(std::isfinite(row[i]), i == 3 || i == 63 || i == 69) << i;
}

TEST(AllowedTokens, SamplerPicksOnlyAllowedTokens) {
  const int vocab = 200;
  Sampler sampler(vocab);
  SamplingParams greedy;
  greedy.temperature = 0.0;
  SamplingParams hot;
  hot.temperature = 1.5;
  hot.top_p = 0.9;
  std::vector<uint64_t> bits((vocab + 63) / 64, 0);
  for (int id : {7, 100, 150}) bits[size_t(id) / 64] |= uint64_t(1) << (id % 64);
  for (uint32_t step = 0; step < 50; ++step) {
    std::vector<float> row(vocab);
    for (int i = 0; i < vocab; ++i) row[size_t(i)] = float((i * 37 + step * 11) % 23);
    row[0] = 100.0f;  // the unconstrained favourite is masked
    for (const SamplingParams* p : {&greedy, &hot}) {
      std::vector<float> r = row;
      SampleInput in;
      in.params = p;
      in.seed = 9;
      in.num_generated = step;
      in.allowed_tokens = bits;
      const int32_t t = sampler.sample(r, in).token;
      EXPECT_TRUE(t == 7 || t == 100 || t == 150) << t;
    }
  }
}

}  // namespace
}  // namespace herd
