// Row-wise FP8 linear(): the SIMD kernel (every target, decode and GEMM paths, strided TP
// shards) against the scalar reference, the reference's meaning on inputs whose result is
// known exactly, the activation-scale cap, and the backend's checks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/common/error.h"
#include "kernels/backend.h"
#include "kernels/cpu/reference_ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace herd {
namespace {

using test::Fp8Weight;
using test::make_fp8;
using test::random_floats;
using test::view;

struct Shape {
  int64_t n, k, o;
};

std::vector<float> run(Backend& be, std::vector<float>& x, const LinearWeight& lw, int64_t n) {
  std::vector<float> out(size_t(n * lw.w.rows), -1.0f);
  Tensor xt = view(x, n, lw.w.cols), ot = view(out, n, lw.w.rows);
  be.linear(xt, lw, ot);
  return out;
}

TEST(LinearFp8, SimdMatchesScalarReference) {
  const Shape shapes[] = {{1, 1, 1},      {1, 7, 5},     {1, 2048, 64}, {2, 33, 9},
                          {3, 100, 17},   {5, 1031, 23}, {8, 256, 31},  {9, 130, 13},
                          {13, 1100, 37}, {32, 512, 64}, {1, 5000, 9},  {2, 4100, 10}};
  auto be = make_cpu_backend(2);
  uint32_t seed = 11;
  for (float ub : {0.0f, 1200.0f, 0.5f}) {
    for (const Shape& s : shapes) {
      SCOPED_TRACE(::testing::Message()
                   << "n=" << s.n << " k=" << s.k << " o=" << s.o << " ub=" << ub);
      auto x = random_floats(size_t(s.n * s.k), seed++, -3.0f, 3.0f);
      auto w = make_fp8(s.o, s.k, seed++);
      std::vector<float> want(size_t(s.n * s.o));
      cpu::ref::linear_fp8(x.data(), s.n, s.k, w.codes.data(), s.k, w.scale.data(), ub, s.o,
                           want.data());
      test::for_each_simd_target([&] {
        // The same exact FP8 products summed in another fp32 order: ~sqrt(k) * 2^-24.
        EXPECT_LT(test::nmse(run(*be, x, w.lw(ub), s.n), want), 1e-11);
      });
    }
  }
}

TEST(LinearFp8, StridedShardMatchesContiguousCopy) {
  // A row-parallel TP shard (columns [40, 140) of a [24, 300] matrix) read in place.
  auto be = make_cpu_backend(2);
  auto full = make_fp8(24, 300, 5);
  Fp8Weight shard;
  shard.rows = 24;
  shard.cols = 100;
  shard.scale = full.scale;
  for (int64_t j = 0; j < 24; ++j)
    for (int64_t i = 40; i < 140; ++i) shard.codes.push_back(full.codes[size_t(j * 300 + i)]);
  LinearWeight strided = full.lw(1200.0f);
  strided.w = strided.w.slice_cols(40, 100);
  for (int64_t n : {1, 3, 20}) {
    auto x = random_floats(size_t(n * 100), uint32_t(n));
    EXPECT_EQ(run(*be, x, strided, n), run(*be, x, shard.lw(1200.0f), n)) << n;
  }
}

TEST(LinearFp8, OneAndTwoThreadsGiveIdenticalResults) {
  auto one = make_cpu_backend(1), two = make_cpu_backend(2);
  for (const Shape& s : {Shape{1, 300, 77}, Shape{6, 520, 130}, Shape{40, 700, 50}}) {
    auto x = random_floats(size_t(s.n * s.k), 3);
    auto w = make_fp8(s.o, s.k, 4);
    EXPECT_EQ(run(*one, x, w.lw(0.0f), s.n), run(*two, x, w.lw(0.0f), s.n));
  }
}

// Inputs whose result is known exactly: x rows whose amax is 448 (scale 1) and whose values
// are FP8 values, weights FP8 values with power-of-two row scales; then the output is the
// exact dot product (small integers times powers of two, exact in fp32 and double).
TEST(LinearFp8, ExactOnRepresentableInputs) {
  auto be = make_cpu_backend(2);
  const int64_t n = 3, k = 40, o = 5;
  std::vector<float> x(size_t(n * k));
  Fp8Weight w;
  w.rows = o;
  w.cols = k;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < k; ++i)
      x[size_t(r * k + i)] = i == 0 ? 448.0f : float((i * 7 + r) % 13) - 6.0f;
  for (int64_t j = 0; j < o; ++j) {
    w.scale.push_back(std::ldexp(1.0f, int(j) - 2));
    for (int64_t i = 0; i < k; ++i) w.codes.push_back(f32_to_f8e4m3(float((i + j) % 9) - 4.0f));
  }
  const auto got = run(*be, x, w.lw(0.0f), n);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < o; ++j) {
      double dot = 0.0;
      for (int64_t i = 0; i < k; ++i)
        dot += double(x[size_t(r * k + i)]) * f8e4m3_to_f32(w.codes[size_t(j * k + i)]);
      EXPECT_EQ(double(got[size_t(r * o + j)]), dot * w.scale[size_t(j)]) << r << "," << j;
    }
}

// The cap: a row with one huge value. Uncapped, the scale is 10000 / 448 and the small
// values (0.01) underflow to zero in FP8; capped at 1.0, the scale is 1/448, the small values
// survive and the huge one saturates to 448 * scale = 1.0.
TEST(LinearFp8, ActivationScaleCapKeepsSmallValuesAndSaturatesOutliers) {
  auto be = make_cpu_backend(1);
  const int64_t k = 16;
  std::vector<float> x(size_t(k), 0.01f);
  x[0] = 10000.0f;
  Fp8Weight w;
  w.rows = 2;
  w.cols = k;
  w.scale = {1.0f, 1.0f};
  for (int64_t i = 0; i < k; ++i)
    w.codes.push_back(f32_to_f8e4m3(i == 0 ? 0.0f : 1.0f));  // row 0: sum of small x
  for (int64_t i = 0; i < k; ++i)
    w.codes.push_back(f32_to_f8e4m3(i == 0 ? 1.0f : 0.0f));  // row 1: the outlier
  const auto uncapped = run(*be, x, w.lw(0.0f), 1);
  EXPECT_EQ(uncapped[0], 0.0f);                       // 0.01 / (10000 / 448) underflows
  EXPECT_NEAR(uncapped[1], 10000.0f, 10000.0f / 16);  // 3 mantissa bits
  const auto capped = run(*be, x, w.lw(1.0f), 1);
  EXPECT_NEAR(capped[0], 0.15f, 0.15f / 16);  // 15 x 0.01 survives
  EXPECT_FLOAT_EQ(capped[1], 1.0f);           // saturated at the cap
}

TEST(LinearFp8, ZeroRowGivesZeros) {
  auto be = make_cpu_backend(1);
  auto w = make_fp8(7, 33, 9);
  std::vector<float> x(33, 0.0f);
  for (float v : run(*be, x, w.lw(1200.0f), 1)) EXPECT_EQ(v, 0.0f);
}

TEST(LinearFp8, RejectsMissingOrMisshapenScalesAndStrayScales) {
  auto be = make_cpu_backend(1);
  auto w = make_fp8(4, 8, 1);
  std::vector<float> x(8, 1.0f), out(4);
  Tensor xt = view(x, 1, 8), ot = view(out, 1, 4);
  LinearWeight no_scale(Tensor{w.codes.data(), DType::kF8E4M3, 4, 8});
  EXPECT_THROW(be->linear(xt, no_scale, ot), Error);
  LinearWeight short_scale = w.lw(0.0f);
  short_scale.row_scale.rows = 3;
  EXPECT_THROW(be->linear(xt, short_scale, ot), Error);
  std::vector<float> wf(32, 1.0f);
  LinearWeight stray(Tensor{wf.data(), DType::kF32, 4, 8},
                     Tensor{w.scale.data(), DType::kF32, 4, 1}, 0.0f);
  EXPECT_THROW(be->linear(xt, stray, ot), Error);
  EXPECT_NO_THROW(be->linear(xt, w.lw(0.0f), ot));
}

}  // namespace
}  // namespace herd
