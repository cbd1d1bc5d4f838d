// Merge of split-K attention partials (see attention_split.h): one block per token, one
// thread per (head, dimension) element; each thread reads the splits' (m, l) of its head (a
// few L1-resident floats) and their outputs for its element.
#include <cmath>

#include "kernels/cuda/attention_split.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/vec_io.cuh"

namespace herd::cuda {
namespace {

__global__ void merge_kernel(const float* __restrict__ part_o, const float2* __restrict__ part_ml,
                             int splits, int num_tokens, int num_heads, int head_dim,
                             bf16* __restrict__ out) {
  const int t = blockIdx.x;
  const int width = num_heads * head_dim;
  for (int e = threadIdx.x; e < width; e += blockDim.x) {
    const int h = e / head_dim;
    float m_max = -INFINITY;
    for (int s = 0; s < splits; ++s)
      m_max = fmaxf(m_max, part_ml[(int64_t(s) * num_tokens + t) * num_heads + h].x);
    float num = 0.0f, den = 0.0f;
    if (m_max != -INFINITY) {
      for (int s = 0; s < splits; ++s) {
        const int64_t row = (int64_t(s) * num_tokens + t) * num_heads + h;
        const float2 ml = part_ml[row];
        if (ml.x == -INFINITY) continue;  // this split saw no key of this row
        const float w = exp2f(ml.x - m_max);
        num += w * part_o[row * head_dim + (e - h * head_dim)];
        den += w * ml.y;
      }
    }
    // den > 0 for every real token (split 0 always holds key 0); 0/0 would only come from a
    // row no split saw, which cannot happen for a token of the batch.
    out[int64_t(t) * width + e] = __float2bfloat16_rn(den > 0.0f ? num / den : 0.0f);
  }
}

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

size_t attention_workspace_bytes(const AttentionBatch& b, int num_heads, int head_dim, int splits) {
  if (splits <= 1) return 0;
  const size_t rows = size_t(splits) * size_t(b.num_tokens) * size_t(num_heads);
  return align256(rows * size_t(head_dim) * sizeof(float)) + rows * sizeof(float2);
}

SplitWorkspace split_workspace(void* base, int splits, int num_tokens, int num_heads,
                               int head_dim) {
  const size_t rows = size_t(splits) * size_t(num_tokens) * size_t(num_heads);
  SplitWorkspace ws;
  ws.o = static_cast<float*>(base);
  ws.ml = reinterpret_cast<float2*>(static_cast<char*>(base) +
                                    align256(rows * size_t(head_dim) * sizeof(float)));
  return ws;
}

void merge_splits(const SplitWorkspace& ws, int splits, int num_tokens, int num_heads, int head_dim,
                  void* out, cudaStream_t stream) {
  if (num_tokens <= 0) return;
  merge_kernel<<<unsigned(num_tokens), 256, 0, stream>>>(ws.o, ws.ml, splits, num_tokens, num_heads,
                                                         head_dim, static_cast<bf16*>(out));
  HERD_CUDA_CHECK_LAUNCH("attention merge kernel");
}

}  // namespace herd::cuda
