// Per-token (row-wise) dynamic FP8 quantization of activations, the first half of a row-wise
// FP8 linear(): one definition shared by the scalar reference and the SIMD kernel, so that
// both multiply exactly the same FP8 values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/common/dtype.h"

namespace herd::cpu {

// The SIMD kernels widen an E4M3 weight to its value / 256 (load_widen-inl.h) and multiply
// the finished dot product back by this (exact: a power of two).
constexpr float kF8WidenScale = 256.0f;

// Every E4M3 code's value / kF8WidenScale: the scalar loads (GEMM panel packing, vector
// tails) look it up instead of decoding bit fields with branches.
struct F8WidenTable {
  float v[256];
  F8WidenTable() {
    for (int c = 0; c < 256; ++c) v[c] = f8e4m3_to_f32(uint8_t(c)) / kF8WidenScale;
  }
};
inline const float* f8_widen_table() {
  static const F8WidenTable t;
  return t.v;
}

// Quantizes x[0, k) to E4M3 and writes the FP8 values (decoded, exact in fp32) to q; returns
// the row's scale s, so that x ~= q * s. s = min(max|x|, ub) / 448 (ub <= 0: uncapped);
// x / s is clamped to +-448 by the saturating conversion, so values above a capped amax
// saturate instead of pushing every small value of the row into FP8's underflow (the paper's
// reason for activation_scale_ub). An all-zero row gets s = 0 and q = 0.
inline float quantize_row_fp8(const float* x, int64_t k, float ub, float* q) {
  float amax = 0.0f;
  for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (ub > 0.0f) amax = std::min(amax, ub);
  const float s = amax / kF8E4M3Max;
  if (!(s > 0.0f)) {
    std::fill(q, q + k, 0.0f);
    return 0.0f;
  }
  for (int64_t i = 0; i < k; ++i) q[i] = f8e4m3_to_f32(f32_to_f8e4m3(x[i] / s));
  return s;
}

}  // namespace herd::cpu
