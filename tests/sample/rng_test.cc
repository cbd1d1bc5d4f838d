#include "engine/sample/rng.h"

#include <gtest/gtest.h>

#include <set>

namespace herd {
namespace {

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
TEST(Philox, KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                          {0xffffffffu, 0xffffffffu}),
            (std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                          {0xa4093822u, 0x299f31d0u}),
            (std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(SamplingUniform, DependsOnlyOnSeedIndexPosition) {
  const double u = sampling_uniform(42, 1, 7);
  EXPECT_EQ(sampling_uniform(42, 1, 7), u);  // a pure function
  EXPECT_NE(sampling_uniform(43, 1, 7), u);
  EXPECT_NE(sampling_uniform(42, 2, 7), u);
  EXPECT_NE(sampling_uniform(42, 1, 8), u);
  EXPECT_NE(sampling_uniform(42 + (uint64_t{1} << 32), 1, 7), u);  // high seed bits count
  EXPECT_NE(sampling_uniform(42, 1, 7, 1), u);
}

TEST(SamplingUniform, InUnitIntervalAndRoughlyUniform) {
  const int n = 100000;
  double sum = 0.0;
  int buckets[10] = {};
  for (int i = 0; i < n; ++i) {
    const double u = sampling_uniform(7, 0, uint32_t(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    ++buckets[int(u * 10)];
  }
  EXPECT_NEAR(sum / n, 0.5, 0.005);
  for (int b : buckets) EXPECT_NEAR(b, n / 10, 600);  // ~6 sigma for a fixed, known sequence
}

TEST(DrawRandomSeed, Varies) {
  std::set<uint64_t> seeds;
  for (int i = 0; i < 8; ++i) seeds.insert(draw_random_seed());
  EXPECT_GT(seeds.size(), 1u);
}

}  // namespace
}  // namespace herd
