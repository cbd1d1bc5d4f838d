// RoPE: SIMD vs scalar reference for head_dim 16/64/128, positions up to 131072, and the
// angle numerics themselves (fp32 angle as Hugging Face forms it, trig correctly rounded).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/reference_ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace herd {
namespace {

using test::random_floats;
using test::view;

// inv_freq[j] = 1 / base^(2j / head_dim) in fp32, as transformers' default rope init does.
std::vector<float> inv_freq(int head_dim, float base = 500000.0f) {
  std::vector<float> f(size_t(head_dim / 2));
  for (int j = 0; j < head_dim / 2; ++j) {
    f[size_t(j)] = 1.0f / std::pow(base, float(2 * j) / float(head_dim));
  }
  return f;
}

TEST(Rope, MatchesReference) {
  auto be = make_cpu_backend(2);
  const std::vector<int32_t> positions = {0, 1, 15, 16, 4095, 8191, 65537, 131070, 131071, 131072};
  const int64_t n = int64_t(positions.size());
  for (int head_dim : {16, 64, 128}) {
    for (int heads : {1, 3, 8}) {
      SCOPED_TRACE(::testing::Message() << "head_dim=" << head_dim << " heads=" << heads);
      const auto freq = inv_freq(head_dim);
      const auto x0 = random_floats(size_t(n * heads * head_dim), uint32_t(head_dim + heads));
      auto want = x0;
      cpu::ref::rope(want.data(), n, heads, head_dim, positions.data(), freq.data());
      test::for_each_simd_target([&] {
        auto got = x0;
        Tensor xt = view(got, n, heads * head_dim);
        be->rope(xt, heads, head_dim, positions.data(), freq.data());
        EXPECT_LT(test::max_abs_diff(got, want), 1e-6);
      });
    }
  }
}

TEST(Rope, PositionZeroIsIdentityAndRotationKeepsPairNorms) {
  auto be = make_cpu_backend(1);
  const int head_dim = 64, half = 32;
  const auto freq = inv_freq(head_dim);
  const std::vector<int32_t> positions = {0, 131071};
  const auto x0 = random_floats(2 * head_dim, 3);
  auto x = x0;
  Tensor xt = view(x, 2, head_dim);
  be->rope(xt, 1, head_dim, positions.data(), freq.data());
  for (int j = 0; j < head_dim; ++j) EXPECT_EQ(x[size_t(j)], x0[size_t(j)]);
  for (int j = 0; j < half; ++j) {
    const float* a = x0.data() + head_dim;
    const float* b = x.data() + head_dim;
    EXPECT_NEAR(std::hypot(b[j], b[j + half]), std::hypot(a[j], a[j + half]), 1e-6);
  }
}

TEST(Rope, AnglesAreTheFp32ProductWithCorrectlyRoundedTrig) {
  const auto freq = inv_freq(128);
  std::vector<float> c(64), s(64);
  for (int32_t pos : {1, 777, 131071, 131072}) {
    cpu::rope_angles(pos, freq.data(), 64, c.data(), s.data());
    for (int j = 0; j < 64; ++j) {
      const float angle = float(pos) * freq[size_t(j)];  // HF: fp32 inv_freq @ fp32 position
      const long double a = angle;
      // Within one fp32 ulp of the exact trig of the fp32 angle (large angles included: a
      // plain fp32 argument reduction would be off by far more at 1.3e5 radians).
      EXPECT_NEAR(c[size_t(j)], double(std::cos(a)), 6e-8) << "pos " << pos << " j " << j;
      EXPECT_NEAR(s[size_t(j)], double(std::sin(a)), 6e-8) << "pos " << pos << " j " << j;
    }
  }
}

TEST(Rope, RejectsOddHeadDimAndWrongWidth) {
  auto be = make_cpu_backend(1);
  std::vector<float> x(30);
  const std::vector<float> freq(8, 1.0f);
  const int32_t pos = 0;
  Tensor odd = view(x, 1, 30);
  EXPECT_THROW(be->rope(odd, 2, 15, &pos, freq.data()), Error);
  EXPECT_THROW(be->rope(odd, 2, 16, &pos, freq.data()), Error);
}

}  // namespace
}  // namespace herd
