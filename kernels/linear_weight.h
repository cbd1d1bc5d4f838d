// The weight operand of Backend::linear(): a matrix, and for FP8 weights the per-output-row
// scales and the activation-scale cap that come with it, so that the model calls one op for
// BF16 and FP8 layers alike.
//
// Row-wise FP8 (fbgemm_fp8, paper §6.2): w is F8E4M3 [out, in], row_scale F32 [out, 1] and
// the dequantized weight is w[j, :] * row_scale[j]. linear() then quantizes each input row
// once per call to E4M3 with scale s_r = min(max|x_r|, act_scale_ub) / 448 (values clamped to
// +-448), multiplies the FP8 values with fp32 accumulation and scales out[r, j] by
// s_r * row_scale[j].
#pragma once

#include "kernels/tensor.h"

namespace herd {

struct LinearWeight {
  Tensor w;          // [out, in]: F32 / F16 / BF16, or F8E4M3 (then row_scale is required)
  Tensor row_scale;  // F32 [out, 1] for F8E4M3 weights; empty (data null) otherwise
  // FP8: upper bound of the per-token activation amax (Meta's activation_scale_ub, 1200);
  // 0 = uncapped.
  float act_scale_ub = 0.0f;

  LinearWeight() = default;
  // An unscaled weight: every existing linear(x, tensor, out) call keeps compiling.
  LinearWeight(const Tensor& t) : w(t) {}  // NOLINT(google-explicit-constructor)
  LinearWeight(const Tensor& t, const Tensor& scale, float ub)
      : w(t), row_scale(scale), act_scale_ub(ub) {}

  bool fp8() const { return w.dtype == DType::kF8E4M3; }
};

}  // namespace herd
