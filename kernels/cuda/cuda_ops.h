// Host-side launchers of the CUDA kernels, one .cu file each. cuda_backend.cc checks shapes and
// dtypes and then calls these; they only enqueue work on `stream` (no synchronization) and throw
// herd::Error when a launch is rejected. Activation and KV pointers are BF16 (2-byte elements);
// weights may be F32/F16/BF16 where the dtype is passed.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "engine/common/dtype.h"
#include "kernels/backend.h"

namespace herd::cuda {

// out[t] = table[ids[t]] as BF16; ids outside [0, vocab) give a zero row.
void embedding(const void* table, DType table_dtype, int64_t vocab, int64_t dim, const int32_t* ids,
               int64_t n, void* out, cudaStream_t stream);

// If residual is non-null: residual += x (rounded to BF16) and the norm is taken of residual;
// else of x. out = normed * weight, per row of dim.
void rms_norm(void* residual, const void* x, int64_t rows, int64_t dim, const void* weight,
              DType weight_dtype, float eps, void* out, cudaStream_t stream);

// Rotate-half RoPE in place on x [n, num_heads * head_dim].
void rope(void* x, int64_t n, int num_heads, int head_dim, const int32_t* positions,
          const float* inv_freq, cudaStream_t stream);

// out = silu(gate) * up over count elements.
void swiglu(const void* gate, const void* up, int64_t count, void* out, cudaStream_t stream);

// Rows of `width` elements: k[t], v[t] -> k_cache[slots[t]], v_cache[slots[t]]; slots < 0
// (padding) and slots >= cache_rows are skipped.
void kv_write(const void* k, const void* v, int64_t n, int64_t width, const int32_t* slots,
              void* k_cache, void* v_cache, int64_t cache_rows, cudaStream_t stream);

// out[i] = x[rows[i]] for i < n, rows of row_bytes bytes; rows outside [0, x_rows) give zeros.
void gather_rows(const void* x, int64_t x_rows, size_t row_bytes, const int32_t* rows, int64_t n,
                 void* out, cudaStream_t stream);

// Row-wise dynamic FP8 (E4M3) quantization of x (BF16 [n, k]): scales[r] = min(max|x_r|, ub) /
// 448 (ub <= 0: uncapped; 0 for a row of zeros, whose q is 0), q[r] = e4m3(x[r] / scales[r]),
// rounded to nearest even and saturated to +-448. q is [n, k] bytes, scales n floats.
void quantize_rows_e4m3(const void* x, int64_t n, int64_t k, float ub, void* q, float* scales,
                        cudaStream_t stream);
// out (BF16 [rows, cols]) = acc * row_scale[r] * col_scale[c].
void scale_outer_to_bf16(const float* acc, int64_t rows, int64_t cols, const float* row_scale,
                         const float* col_scale, void* out, cudaStream_t stream);

// Element-wise conversions of count elements of F32/F16/BF16.
void convert_to_f32(const void* src, DType dtype, int64_t count, float* out, cudaStream_t stream);
void convert_to_bf16(const void* src, DType dtype, int64_t count, void* out, cudaStream_t stream);

// Causal paged attention with GQA over a varlen batch; q, out [num_tokens, num_heads *
// head_dim] and the caches [slots, num_kv_heads * head_dim], all BF16. `splits` > 1 divides
// each (sequence, kv head, query tile)'s context among that many blocks and merges their
// partial results through `workspace`, which must hold attention_workspace_bytes(...) bytes.
struct PagedAttentionArgs {
  const void* q = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  void* out = nullptr;
  int64_t cache_rows = 0;
  int block_size = 16;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;
};
// Head sizes the attention kernel is compiled for.
bool attention_head_dim_supported(int head_dim);
// The number of KV splits worth using for this batch on a GPU of `sm_count` multiprocessors.
int attention_splits(const AttentionBatch& b, int num_kv_heads, int group, int sm_count);
size_t attention_workspace_bytes(const AttentionBatch& b, int num_heads, int head_dim, int splits);
void paged_attention(const PagedAttentionArgs& a, const AttentionBatch& b, int splits,
                     void* workspace, cudaStream_t stream);

}  // namespace herd::cuda
