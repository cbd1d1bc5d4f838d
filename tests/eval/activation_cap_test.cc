// The activation scale cap (activation_scale_ub = 1200) on a row with one huge value, through
// the CPU backend's real FP8 linear(): capped, the ordinary values keep their precision and
// the outlier saturates; uncapped (ub = +inf), the ordinary values underflow to zero.
#include "engine/eval/activation_cap.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/common/dtype.h"
#include "engine/quant/fp8_rowwise.h"

namespace herd::eval {
namespace {

// A [rows, k] weight of N(0, 0.02) values quantized row-wise as `herd quantize` does.
struct Fp8Weight {
  std::vector<uint8_t> codes;
  std::vector<float> scale;
  Tensor w, s;
  Fp8Weight(int64_t rows, int64_t k, uint64_t seed) : codes(size_t(rows * k)), scale(size_t(rows)) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t j = 0; j < rows; ++j) {
      for (float& v : row) v = normal(rng);
      scale[size_t(j)] = quantize_weight_row_fp8(row.data(), DType::kF32, k, &codes[size_t(j * k)]);
    }
    w = Tensor{codes.data(), DType::kF8E4M3, rows, k};
    s = Tensor{scale.data(), DType::kF32, rows, 1};
  }
};

TEST(ActivationCap, KeepsOrdinaryValuesWhereUncappedTheyUnderflow) {
  auto be = make_cpu_backend(1);
  Fp8Weight w(64, 512, 3);
  const CapDemo d = demonstrate_activation_cap(*be, w.w, w.s, 1e5f, 1200.0f);
  EXPECT_EQ(d.k, 512);
  // Uncapped: scale 1e5 / 448 = 223; every |x| < 223 * 2^-10 = 0.22 rounds to zero
  // (P(|N(0,1)| < 0.22) = 17%).
  EXPECT_FLOAT_EQ(d.uncapped.scale, 1e5f / 448.0f);
  EXPECT_GT(d.uncapped.ordinary_underflow, 0.10);
  // Capped: scale 1200 / 448; only |x| < 0.0026 would vanish (about 1 in 500 draws).
  EXPECT_FLOAT_EQ(d.capped.scale, 1200.0f / 448.0f);
  EXPECT_LT(d.capped.ordinary_underflow, 0.01);
  // The outlier: saturated at the cap, or kept to 3 mantissa bits uncapped.
  EXPECT_NEAR(d.capped.outlier_quantized, 1200.0, 1e-3);
  EXPECT_NEAR(d.uncapped.outlier_quantized, 1e5, 1e5 / 16);
  // The ordinary channels' output: E4M3 rounding (a few %) capped, several times that uncapped.
  EXPECT_LT(d.capped.ordinary_rel_error, 0.05);
  EXPECT_GT(d.uncapped.ordinary_rel_error, 3 * d.capped.ordinary_rel_error);
  // The price: with the outlier's channel included, the capped output is far off (the outlier
  // was cut from 1e5 to 1200), the uncapped one close.
  EXPECT_GT(d.capped.full_rel_error, 0.5);
  EXPECT_LT(d.uncapped.full_rel_error, 0.1);
}

TEST(ActivationCap, AnOrdinaryRowIsUntouchedByTheCap) {
  // Below the cap both runs are the same computation.
  auto be = make_cpu_backend(1);
  Fp8Weight w(16, 128, 5);
  const CapDemo d = demonstrate_activation_cap(*be, w.w, w.s, 50.0f, 1200.0f);
  EXPECT_EQ(d.capped.scale, d.uncapped.scale);
  EXPECT_EQ(d.capped.ordinary_rel_error, d.uncapped.ordinary_rel_error);
  EXPECT_EQ(d.capped.full_rel_error, d.uncapped.full_rel_error);
  EXPECT_NEAR(d.capped.outlier_quantized, 50.0, 50.0 / 16);
}

TEST(ActivationCap, RefusesANonFp8Weight) {
  auto be = make_cpu_backend(1);
  std::vector<float> w(16, 1.0f), s(4, 1.0f);
  EXPECT_ANY_THROW(demonstrate_activation_cap(*be, Tensor{w.data(), DType::kF32, 4, 4},
                                              Tensor{s.data(), DType::kF32, 4, 1}, 1e5f, 1200.0f));
}

}  // namespace
}  // namespace herd::eval
