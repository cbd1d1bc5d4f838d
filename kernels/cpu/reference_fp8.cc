// Scalar reference of the row-wise FP8 linear (see linear_weight.h): the oracle the SIMD
// kernel (linear.cc) is held to.
#include <vector>

#include "kernels/cpu/fp8_activation.h"
#include "kernels/cpu/reference_ops.h"

namespace herd::cpu::ref {

void linear_fp8(const float* x, int64_t n, int64_t in_features, const uint8_t* w, int64_t w_stride,
                const float* row_scale, float act_scale_ub, int64_t out_features, float* out) {
  std::vector<float> q(static_cast<size_t>(in_features));
  for (int64_t r = 0; r < n; ++r) {
    const float s = quantize_row_fp8(x + r * in_features, in_features, act_scale_ub, q.data());
    for (int64_t j = 0; j < out_features; ++j) {
      float acc = 0.0f;  // fp32 accumulation of FP8 x FP8 products (each exact in fp32)
      for (int64_t i = 0; i < in_features; ++i)
        acc += q[size_t(i)] * f8e4m3_to_f32(w[j * w_stride + i]);
      out[r * out_features + j] = acc * s * row_scale[j];
    }
  }
}

}  // namespace herd::cpu::ref
