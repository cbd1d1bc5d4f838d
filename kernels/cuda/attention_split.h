// The split-K side of paged attention: how many splits a batch gets, where their partial
// results live, and the kernel that merges them. Split s of (token, head) leaves its
// unnormalized output O_s[head_dim] and (m_s, l_s): the running max of its scores in log2 units
// and the sum of 2^(score - m_s) over its keys; the merge is
//   out = sum_s 2^(m_s - M) O_s / sum_s 2^(m_s - M) l_s,   M = max_s m_s,
// where a split that saw no key (m_s = -inf) contributes nothing.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace herd::cuda {

struct SplitWorkspace {
  float* o = nullptr;    // [splits, num_tokens, num_heads, head_dim]
  float2* ml = nullptr;  // [splits, num_tokens, num_heads]: (m, l)
};

// Carves the two arrays out of one buffer of attention_workspace_bytes() bytes.
SplitWorkspace split_workspace(void* base, int splits, int num_tokens, int num_heads, int head_dim);

// out [num_tokens, num_heads * head_dim] BF16 from the splits' partial results.
void merge_splits(const SplitWorkspace& ws, int splits, int num_tokens, int num_heads, int head_dim,
                  void* out, cudaStream_t stream);

}  // namespace herd::cuda
