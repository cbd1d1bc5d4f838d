// Plain scalar versions of the CPU kernels in cpu_ops.h: one loop, one thread, no SIMD, sums in
// the obvious order. They define what each op means; the tests hold the fast kernels to them
// within a per-op error bound.
#pragma once

#include <cstdint>

#include "engine/common/dtype.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_ops.h"

namespace herd::cpu::ref {

// Element i of a F32/F16/BF16 array as fp32.
float load_f32(const void* data, DType dtype, int64_t i);

void linear(const float* x, int64_t n, int64_t in_features, const void* w, DType w_dtype,
            int64_t out_features, float* out);
// Row-wise FP8 (linear_weight.h): w F8E4M3 [out, in] with rows w_stride apart, row_scale
// [out]; each x row quantized per token (fp8_activation.h), products summed in fp32.
void linear_fp8(const float* x, int64_t n, int64_t in_features, const uint8_t* w, int64_t w_stride,
                const float* row_scale, float act_scale_ub, int64_t out_features, float* out);
void rms_norm(const float* x, int64_t n, int64_t dim, const void* weight, DType w_dtype, float eps,
              float* out);
void add_rms_norm(float* residual, const float* x, int64_t n, int64_t dim, const void* weight,
                  DType w_dtype, float eps, float* out);
void swiglu(const float* gate, const float* up, int64_t count, float* out);
void rope(float* x, int64_t n, int num_heads, int head_dim, const int32_t* positions,
          const float* inv_freq);
void convert_to_f32(const void* src, DType dtype, int64_t count, float* out);
// Two-pass softmax (max, then exp-sum) per query row, no online rescaling.
void paged_attention(const float* q, const PagedKv& kv, const AttentionBatch& b, int num_heads,
                     float scale, float* out);

}  // namespace herd::cpu::ref
