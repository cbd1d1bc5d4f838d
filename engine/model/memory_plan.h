// Memory planning for a TP x PP deployment (`herd plan`): what one GPU of each pipeline stage
// holds — its shard of the weights, activation workspace for one step, a runtime reserve — and
// how much KV cache fits in what is left. Pure functions of the model shape and the options, so
// that the numbers can be checked by hand (tests/cli/plan_test.cc) and before any GPU is rented:
// the paper's point (Llama 3 §6.1) is that 405B in BF16 (~810 GB of weights) does not fit on
// one node of 8 x 80 GB and needs pipeline parallelism over two.
//
// Sharding follows engine/parallel/layout.h: a stage's layers are stage_layer_counts(); within
// a stage, q/k/v/o and gate/up/down are split over the TP ranks (Megatron column/row split),
// the embedding is replicated on first-stage ranks, the final norm and the LM head (split by
// vocabulary over TP) sit on last-stage ranks, and RMSNorm weights are replicated.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/common/dtype.h"
#include "engine/model/config.h"

namespace herd {

// The model dimensions the plan needs (a subset of ModelConfig, plus a name to print).
struct PlanShape {
  std::string name;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  bool tied_embeddings = false;
  // > 0: a reward model (LlamaForSequenceClassification): its head is `score.weight`
  // [num_labels, hidden], replicated on every rank of the last stage, instead of lm_head.
  int64_t num_labels = 0;
};

// From a checkpoint's config (herd plan --model DIR).
PlanShape plan_shape_from_config(const ModelConfig& c, const std::string& name);
// From make-model's named shapes (herd plan --shape llama3-405b); throws herd::InvalidArgument
// (param "shape") naming the known shapes when `name` is not one.
PlanShape plan_shape_named(const std::string& name);

struct PlanOptions {
  int tensor_parallel_size = 1;
  int pipeline_parallel_size = 1;
  int micro_batches = 0;  // plans in flight with PP; 0 = pipeline_parallel_size
  DType weight_dtype = DType::kBF16;
  DType kv_dtype = DType::kBF16;
  // FP8 (1 byte) gate/up/down with one FP32 scale per output row, except in the first and last
  // decoder layers, which stay in weight_dtype (Llama 3 §6.2: those layers are the most
  // sensitive to quantization).
  bool fp8_ffn = false;
  double gpu_memory_gib = 80.0;
  double gpu_memory_utilization = 0.9;  // fraction of the GPU the process may use
  int64_t max_model_len = 0;            // 0 = the model's max_position_embeddings
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  int64_t block_size = 16;
  // CUDA context, cuBLASLt workspace, NCCL channel buffers, attention partials: not modelled
  // one by one, a flat amount per GPU.
  int64_t runtime_reserve_bytes = int64_t(1) << 30;
};

// Weights of one rank of one stage, in bytes, by part.
struct StageWeights {
  int64_t attention = 0;  // q/k/v/o of this stage's layers, this rank's TP shard
  int64_t ffn = 0;        // gate/up/down (FP8 layers include their row scales)
  int64_t norms = 0;      // input/post-attention RMSNorm of the layers, + final norm if last
  int64_t embedding = 0;  // replicated on first-stage ranks
  int64_t lm_head = 0;    // last stage, vocab / tp rows (none when tied and first == last)
  int64_t total() const { return attention + ffn + norms + embedding + lm_head; }
};

struct StagePlan {
  int stage = 0;
  int first_rank = 0, last_rank = 0;   // world ranks [first, last] of this stage (its TP group)
  int layer_begin = 0, layer_end = 0;  // decoder layers [begin, end)
  int fp8_layers = 0;                  // layers whose FFN is FP8 (with fp8_ffn)
  StageWeights weights;
  int64_t activation_bytes = 0;  // activation_workspace_bytes() for this stage
  int64_t reserve_bytes = 0;
  int64_t budget_bytes = 0;  // gpu memory x utilization
  int64_t kv_bytes = 0;      // budget - weights - activations - reserve (may be < 0)
  int64_t kv_bytes_per_block = 0;
  int64_t num_blocks = 0;  // whole blocks in kv_bytes (0 when kv_bytes <= 0)
};

struct MemoryPlan {
  PlanShape shape;
  PlanOptions options;  // max_model_len resolved
  std::vector<StagePlan> stages;
  int64_t model_weight_bytes = 0;  // the whole unsharded model in weight_dtype (with fp8_ffn)
  // The pool every stage allocates the same block ids from: the smallest stage's.
  int64_t num_blocks = 0;
  int64_t kv_tokens = 0;
  int64_t blocks_per_full_sequence = 0;  // ceil(max_model_len / block_size)
  bool fits = false;
  std::string verdict;  // "fits: ..." or "does not fit: <why>"
};

// Element bytes of `dtype` for planning (bf16/f16 2, f32 4).
int64_t plan_dtype_bytes(DType dtype);

// KV bytes of one block on one rank: layers x 2 (K, V) x block_size x (kv_heads / tp) x
// head_dim x kv dtype bytes — KvCache::bytes_per_block with the rank's layers and heads.
int64_t kv_bytes_per_block(const PlanShape& s, int stage_layers, int tp, int64_t block_size,
                           DType kv_dtype);

// Activation workspace of one rank for one step of T = max_num_batched_tokens tokens, in the
// activation dtype (a bytes = the weight dtype's; FP8 FFN weights still run BF16 activations).
// Buffers are reused layer to layer, so it is one layer's peak:
//   T x a x (2 h + (q + 2 kv) / tp + q / tp + 3 i / tp)
//     residual + normed input, fused qkv out, attention out, gate + up + silu*up
// plus, on the last stage, FP32 logits of the sampled rows (one per sequence):
//   max_num_seqs x V x 4 x (1 / tp + 1)   this rank's vocab slice + the gathered row
// plus, with PP > 1, the stage-boundary send/receive buffers of every plan in flight:
//   2 x M x T x h x a
// where h = hidden, q = heads x head_dim, kv = kv_heads x head_dim, i = intermediate,
// V = vocab, M = micro batches.
int64_t activation_workspace_bytes(const PlanShape& s, const PlanOptions& o, bool last_stage);

// The plan. Throws herd::InvalidArgument (param = the flag at fault) for options that no
// deployment can run: tp not dividing the heads or KV heads, layers < pp, non-positive memory,
// utilization outside (0, 1], block size, token and sequence counts < 1.
MemoryPlan plan_memory(const PlanShape& shape, const PlanOptions& options);

// Human-readable report (one block per stage, then the verdict line) and its JSON form.
std::string format_plan(const MemoryPlan& p);
nlohmann::ordered_json plan_to_json(const MemoryPlan& p);

}  // namespace herd
