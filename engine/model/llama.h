// The Llama forward pass (Llama 3 / 3.1 / 3.2 text), written once against kernels/backend.h.
// One call runs one varlen step: any mix of prefill chunks and decodes, each sequence reading
// and writing the paged KV cache through its block table; only the rows listed in
// logits_rows are projected to the vocabulary.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model/config.h"
#include "kernels/backend.h"

namespace herd {

struct LlamaWeights;

// The paged KV cache of all layers, in the backend's memory.
class KvCache {
 public:
  KvCache(Backend& backend, const ModelConfig& cfg, int64_t num_blocks, int block_size);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  KvLayer& layer(size_t i) { return layers_[i]; }
  int64_t num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  // Bytes one block takes over all layers (K and V): sizes pools from a memory budget.
  static size_t bytes_per_block(const ModelConfig& cfg, int block_size, DType kv_dtype);

 private:
  Backend& backend_;
  int64_t num_blocks_;
  int block_size_;
  std::vector<KvLayer> layers_;
};

// One step's flat inputs, in host memory (the model uploads them once per step).
struct StepInput {
  std::vector<int32_t> token_ids;     // [num_tokens]
  std::vector<int32_t> positions;     // [num_tokens]
  std::vector<int32_t> slot_mapping;  // [num_tokens]: block * block_size + offset
  std::vector<int32_t> query_start;   // [num_seqs + 1]
  std::vector<int32_t> seq_lens;      // [num_seqs]: context length after this step
  std::vector<int32_t> block_tables;  // [num_seqs * max_blocks_per_seq], -1 padded
  int max_blocks_per_seq = 0;
  std::vector<int32_t> logits_rows;   // token rows whose logits are wanted
};

class LlamaModel {
 public:
  // max_tokens: the most tokens one step may carry (max_num_batched_tokens);
  // max_seqs: the most sequences.
  LlamaModel(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights,
             Backend& backend, int max_tokens, int max_seqs);
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  // Runs the step; writes fp32 logits [logits_rows.size(), vocab] into `logits` (host).
  void forward(const StepInput& in, KvCache& kv, float* logits);

  const ModelConfig& config() const { return cfg_; }
  Backend& backend() { return backend_; }
  int max_tokens() const { return max_tokens_; }

 private:
  struct Layer {
    Tensor attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
  };
  Tensor scratch(DType dt, int64_t rows, int64_t cols);
  int32_t* scratch_ints(size_t n);

  ModelConfig cfg_;
  std::shared_ptr<const LlamaWeights> weights_;
  Backend& backend_;
  int max_tokens_;
  int max_seqs_;
  Tensor embed_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
  std::vector<void*> allocations_;
  // activations, [max_tokens, ...]
  Tensor residual_, normed_, q_, k_, v_, attn_out_, proj_out_, gate_, up_, act_, last_hidden_, last_proj_,
      logits_dev_, logits_f32_;
  int32_t *d_ids_, *d_pos_, *d_slots_, *d_qstart_, *d_seqlens_, *d_rows_;
  int32_t* d_block_tables_ = nullptr;
  size_t block_tables_capacity_ = 0;
  float* d_inv_freq_;
};

}  // namespace herd
