// The operations the Llama forward needs, and nothing about requests, schedulers or models.
// engine/model is written once against this interface; kernels/cpu is the reference
// implementation that every other backend (kernels/cuda) is tested against.
//
// Memory: every pointer handed to an op (tensor data, index arrays inside AttentionBatch)
// lives in the backend's memory, obtained from allocate() and filled with upload(). On the CPU
// backend that is ordinary host memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/linear_weight.h"
#include "kernels/tensor.h"

namespace herd {

// The paged KV cache of one layer: K and V each [num_blocks * block_size, num_kv_heads *
// head_dim] in the backend's kv dtype. Token slot s lives in row s (block s / block_size,
// offset s % block_size).
struct KvLayer {
  Tensor k;
  Tensor v;
  int block_size = 16;
  int num_kv_heads = 0;
  int head_dim = 0;
};

// One varlen batch: num_seqs sequences, their new tokens packed one after the other.
// Sequence i owns query rows [query_start[i], query_start[i+1]); its context (cached tokens +
// new ones) has seq_lens[i] tokens, so its new tokens sit at positions
// seq_lens[i] - q_len .. seq_lens[i] - 1 and attend causally to everything before them.
// block_tables is [num_seqs, max_blocks_per_seq]: logical block j of sequence i is physical
// block block_tables[i * max_blocks_per_seq + j].
struct AttentionBatch {
  int num_seqs = 0;
  int num_tokens = 0;
  int max_blocks_per_seq = 0;
  int max_seq_len = 0;              // max over seq_lens (lets kernels size split-K work)
  const int32_t* query_start = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;     // [num_seqs]
  const int32_t* block_tables = nullptr; // [num_seqs * max_blocks_per_seq]
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // dtype the backend wants activations and the KV cache in (CPU: F32; CUDA: BF16).
  virtual DType activation_dtype() const = 0;
  virtual DType kv_dtype() const = 0;

  // ---- memory -------------------------------------------------------------------------
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p) = 0;
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;    // host -> backend
  virtual void download(void* dst, const void* src, size_t bytes) = 0;  // backend -> host
  virtual void synchronize() {}
  // Make a weight usable by linear()/embedding(). `host` points at host memory that stays
  // valid for the backend's lifetime (an mmap'd checkpoint); the CPU backend may keep the
  // pointer as is (no copy), a GPU backend copies it.
  virtual Tensor adopt_weight(const Tensor& host) = 0;
  virtual void release_weight(const Tensor& w) = 0;
  // `w` (from adopt_weight) will be a linear() weight until release_weight(w): the backend may
  // repack it once, here, into the layout its GEMM wants (the CPU backend packs BF16 weights
  // for its AVX-512 BF16 kernel, kernels/cpu/linear_bf16.h); linear() then finds the packed
  // copy. Not to be called concurrently with linear() on the same backend. Pure virtual so that
  // a decorating backend cannot silently drop it.
  virtual void prepare_linear(const Tensor& w) = 0;

  // ---- ops ---------------------------------------------------------------------------
  // out[t] = table[ids[t]]; table F32/F16/BF16 [vocab, dim], out [n, dim] activation dtype.
  virtual void embedding(const Tensor& table, const int32_t* ids, Tensor& out) = 0;
  // out = x / rms(x) * weight, per row. weight [1, dim].
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;
  // residual += x; out = rms_norm(residual) (the fused residual-add + norm of each block).
  virtual void add_rms_norm(Tensor& residual, const Tensor& x, const Tensor& weight, float eps,
                            Tensor& out) = 0;
  // out[n, o] = x[n, i] * w[o, i]^T, fp32 accumulation; w F32/F16/BF16, or F8E4M3 with its
  // row scales (row-wise FP8, see linear_weight.h).
  virtual void linear(const Tensor& x, const LinearWeight& w, Tensor& out) = 0;
  // A fused projection (QKV, gate/up): outs[i] = x * ws[i]^T for every i, each bitwise what
  // linear(x, ws[i], outs[i]) gives, in one op so that the backend can share the work on the
  // input (its bf16 rounding or FP8 quantization) and schedule every weight's columns as one
  // piece of work. The weights stay separate tensors (no concatenated copy in memory).
  // (Pointer and count, not std::span: the .cu files that include this header are C++17.)
  virtual void linear_group(const Tensor& x, const LinearWeight* ws, Tensor* outs,
                            size_t count) = 0;
  // Rotate-half RoPE in place on x [n, num_heads * head_dim] at positions[n], angle
  // positions[t] * inv_freq[j] for j < head_dim / 2 (inv_freq already holds llama3 scaling).
  virtual void rope(Tensor& x, int num_heads, int head_dim, const int32_t* positions,
                    const float* inv_freq) = 0;
  // out = silu(gate) * up, elementwise.
  virtual void swiglu(const Tensor& gate, const Tensor& up, Tensor& out) = 0;
  // Store k/v rows [n, num_kv_heads * head_dim] at slots[t] of the layer's cache.
  virtual void kv_write(const Tensor& k, const Tensor& v, const int32_t* slots,
                        KvLayer& layer) = 0;
  // Causal paged attention with GQA: q [num_tokens, num_heads * head_dim] -> out same shape.
  virtual void paged_attention(const Tensor& q, const KvLayer& layer, const AttentionBatch& b,
                               int num_heads, float scale, Tensor& out) = 0;
  // out[i] = x[rows[i]] for i < out.rows.
  virtual void gather_rows(const Tensor& x, const int32_t* rows, Tensor& out) = 0;
  // out (F32) = x converted to fp32 (for logits that leave the backend).
  virtual void to_f32(const Tensor& x, Tensor& out) = 0;
};

// The CPU backend (kernels/cpu); threads = 0 means one per hardware thread.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace herd
