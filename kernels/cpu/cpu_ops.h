// The CPU kernels on raw host pointers, SIMD (Highway, dispatched at run time to the best
// target the machine supports) and multi-threaded over a ThreadPool. cpu_backend.cc checks
// shapes and dtypes and then calls these; reference_ops.h holds a plain scalar twin of each
// that the tests compare against. Activations are fp32; weights fp32, fp16 or bf16 and are
// widened to fp32 in registers, every sum is accumulated in fp32.
#pragma once

#include <cstdint>

#include "engine/common/dtype.h"
#include "kernels/backend.h"

namespace herd::cpu {

class ThreadPool;

// out[r, j] = sum_i x[r, i] * w[j, i] for r < n, j < out_features; x [n, in], w [out, in]
// with rows w_stride >= in elements apart.
void linear(ThreadPool& pool, const float* x, int64_t n, int64_t in_features, const void* w,
            int64_t w_stride, DType w_dtype, int64_t out_features, float* out);

// Row-wise FP8: w F8E4M3 [out, in] (rows w_stride apart) with row_scale [out]; each x row
// is quantized once per call (fp8_activation.h) and out[r, j] = dot(q_r, w_j) * s_r *
// row_scale[j], fp32 accumulation. The weight is widened in registers: half the bytes of bf16.
void linear_fp8(ThreadPool& pool, const float* x, int64_t n, int64_t in_features, const uint8_t* w,
                int64_t w_stride, const float* row_scale, float act_scale_ub, int64_t out_features,
                float* out);

// q[r, :] = row r of x [n, k] quantized to E4M3 values, scale[r] its scale (fp8_activation.h),
// rows in parallel: the first step of both row-wise FP8 kernels (linear_fp8, linear_fp8_packed).
void quantize_rows_fp8(ThreadPool& pool, const float* x, int64_t n, int64_t k, float act_scale_ub,
                       float* q, float* scale);

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, for each of n rows of dim.
void rms_norm(ThreadPool& pool, const float* x, int64_t n, int64_t dim, const void* weight,
              DType w_dtype, float eps, float* out);
// residual += x; out = rms_norm(residual).
void add_rms_norm(ThreadPool& pool, float* residual, const float* x, int64_t n, int64_t dim,
                  const void* weight, DType w_dtype, float eps, float* out);

// out = silu(gate) * up over count elements.
void swiglu(ThreadPool& pool, const float* gate, const float* up, int64_t count, float* out);

// Rotate-half RoPE in place on x [n, num_heads * head_dim] (see rope_angles() for numerics).
void rope(ThreadPool& pool, float* x, int64_t n, int num_heads, int head_dim,
          const int32_t* positions, const float* inv_freq);

// out[i] = float(src[i]) for count elements of dtype F32/F16/BF16.
void convert_to_f32(ThreadPool& pool, const void* src, DType dtype, int64_t count, float* out);

// Causal paged attention with GQA over a varlen batch (see AttentionBatch in backend.h).
// q and out [num_tokens, num_heads * head_dim]; k_cache/v_cache rows of num_kv_heads * head_dim
// addressed by slot = block_tables[...] * block_size + offset.
struct PagedKv {
  const float* k = nullptr;
  const float* v = nullptr;
  int block_size = 16;
  int num_kv_heads = 0;
  int head_dim = 0;
};
void paged_attention(ThreadPool& pool, const float* q, const PagedKv& kv, const AttentionBatch& b,
                     int num_heads, float scale, float* out);

// cos/sin of the rotation angles of one token: angle_j = float(position) * inv_freq[j] rounded
// to fp32 exactly as Hugging Face computes it (fp32 inv_freq times fp32 position), then cos
// and sin evaluated in double and rounded to fp32. The fp32 product keeps us bit-compatible
// with the reference model's angles; evaluating the trig functions in double makes the result
// the correctly rounded value of that fp32 angle even near position 131072 (angles ~1e5 rad).
void rope_angles(int32_t position, const float* inv_freq, int half, float* cos_out, float* sin_out);

}  // namespace herd::cpu
