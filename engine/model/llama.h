// The Llama forward pass (Llama 3 / 3.1 / 3.2 text), written once against kernels/backend.h.
// One call runs one varlen step: any mix of prefill chunks and decodes, each sequence reading
// and writing the paged KV cache through its block table; only the rows listed in
// logits_rows are projected to the vocabulary.
//
// Parallel: a LlamaModel is one rank's part of a tensor-parallel x pipeline-parallel job
// (engine/parallel/layout.h). It holds only its stage's layers, and with tp_size > 1 only its
// shard of each layer (Megatron: q/k/v and gate/up column-parallel, o_proj and down_proj
// row-parallel, each followed by an all-reduce over the TP communicator; lm_head
// vocab-parallel, its logits all-gathered so that every TP rank of the last stage returns the
// full [rows, vocab]). One step on a rank:
//   first stage:      token ids -> embedding -> its layers
//   other stages:     the executor receives the previous stage's hidden states into
//                     hidden_states(T) before forward()
//   non-last stages:  after forward(), hidden_states(T) holds the residual stream after the
//                     stage's last layer (every residual add done; the next stage's first
//                     input norm not yet applied): the executor sends it on
//   last stage:       final norm + lm_head on logits_rows -> logits
// Every TP rank of a stage holds the same full residual (after the all-reduces), so TP rank r
// of stage s can send to TP rank r of stage s + 1 (tests/parallel_model does): T x hidden
// activations per step, e.g. 2 x 16384 bytes per token for 405B in bf16.
// The default layout (one stage, tp 1) is the whole model, exactly the single-process path.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model/config.h"
#include "engine/parallel/layout.h"
#include "kernels/backend.h"

namespace herd {

struct LlamaWeights;
class Communicator;

// The paged KV cache of the rank's layers (all of them by default), in the backend's memory:
// with a layout, only the stage's layers (layer(i) is layer layer_begin + i) and the rank's
// num_key_value_heads / tp_size KV heads.
class KvCache {
 public:
  KvCache(Backend& backend, const ModelConfig& cfg, int64_t num_blocks, int block_size,
          const RankLayout& layout = {});
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  KvLayer& layer(size_t i) { return layers_[i]; }
  int64_t num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  size_t num_layers() const { return layers_.size(); }
  // Bytes one block takes on this rank over its layers and KV heads (K and V): sizes each
  // rank's pool from its memory budget.
  static size_t bytes_per_block(const ModelConfig& cfg, int block_size, DType kv_dtype,
                                const RankLayout& layout = {});

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
  std::vector<int32_t> logits_rows;  // token rows whose logits are wanted
};

class LlamaModel {
 public:
  // max_tokens: the most tokens one step may carry (max_num_batched_tokens);
  // max_seqs: the most sequences. `weights` is either the whole model (it is then sharded
  // for `layout` here, as views: see shard_llama_weights) or already this rank's part
  // (load_llama_weights with the same layout). `tp` is the stage's tensor-parallel group,
  // rank layout.tp_rank of layout.tp_size; null when tp_size == 1. Throws
  // herd::InvalidArgument when the layout does not divide the model.
  LlamaModel(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights, Backend& backend,
             int max_tokens, int max_seqs, const RankLayout& layout = {},
             Communicator* tp = nullptr);
  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  // Runs the step on this rank's layers. Last stage: writes fp32 logits
  // [logits_rows.size(), vocab] into `logits` (host; every TP rank gets the full rows) — for a
  // reward model (cfg.is_reward_model()) the scores [logits_rows.size(), num_labels] instead:
  // the score head on the final-normed hidden state of each row, as transformers'
  // LlamaForSequenceClassification does for the last token.
  // Other stages: `logits` is unused (may be null). Every rank of a stage's TP group must
  // call it with the same input (it all-reduces). Every stage gets the whole StepInput;
  // token_ids are read only by the first stage (later ones take its length as num_tokens).
  void forward(const StepInput& in, KvCache& kv, float* logits);

  // The residual-stream buffer [num_tokens, hidden] (activation dtype, backend memory) that a
  // non-first stage's input is received into before forward(), and that holds a non-last
  // stage's output after it (see the top of this file). Valid until the next forward().
  Tensor hidden_states(int64_t num_tokens);

  const RankLayout& layout() const { return layout_; }

  const ModelConfig& config() const { return cfg_; }
  Backend& backend() { return backend_; }
  int max_tokens() const { return max_tokens_; }

 private:
  struct Layer {
    Tensor attn_norm, ffn_norm;
    // The fused projections (Backend::linear_group): q, k, v of the normed input, then gate
    // and up of the normed residual. Feed-forward weights are BF16, or row-wise FP8 with scales.
    std::array<LinearWeight, 3> qkv;
    LinearWeight wo;
    std::array<LinearWeight, 2> gate_up;
    LinearWeight w_down;
  };
  static std::array<const LinearWeight*, 7> linears(const Layer& l);
  Tensor scratch(DType dt, int64_t rows, int64_t cols);
  int32_t* scratch_ints(size_t n);

  ModelConfig cfg_;
  RankLayout layout_;  // resolved: layer range filled in
  Communicator* tp_;
  std::shared_ptr<const LlamaWeights> weights_;  // this rank's part
  Backend& backend_;
  int max_tokens_;
  int max_seqs_;
  Tensor embed_, final_norm_, lm_head_;
  bool head_is_embed_ = false;    // tied and unsharded: one adopted tensor serves both
  Tensor ones_;                   // [1, hidden] of 1.0: folds the last residual add of a stage
  std::vector<float> ones_host_;  // backs ones_ (adopt_weight may keep the host pointer)
  int64_t vocab_shard_ = 0;       // lm_head rows per TP rank (the last may hold fewer)
  std::vector<float> gather_send_, gather_recv_;  // host staging of the logits all-gather
  std::vector<Layer> layers_;
  std::vector<void*> allocations_;
  // activations, [max_tokens, ...]
  Tensor residual_, normed_, q_, k_, v_, attn_out_, proj_out_, gate_, up_, act_, last_hidden_,
      last_proj_, logits_dev_, logits_f32_;
  int32_t *d_ids_, *d_pos_, *d_slots_, *d_qstart_, *d_seqlens_, *d_rows_;
  int32_t* d_block_tables_ = nullptr;
  size_t block_tables_capacity_ = 0;
  float* d_inv_freq_;
};

}  // namespace herd
