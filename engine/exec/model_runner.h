// ModelRunner: what one rank runs — its weights (shard), its KV cache, its backend, and the
// sampler where the logits are. The engine core never sees logits: run() returns sampled token
// ids and requested logprobs.
//
// In a TP x PP job (layout, engine/parallel/layout.h) run_stage() runs this rank's part of a
// plan: a non-first stage first receives the previous stage's hidden states (from the same TP
// rank of stage s-1, over `activations`), a non-last stage sends its own on to stage s+1, and
// on the last stage TP rank 0 samples (the logits are all-gathered over TP inside the model).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/exec/exec_plan.h"
#include "engine/exec/executor.h"
#include "engine/model/config.h"
#include "engine/model/llama.h"
#include "engine/parallel/communicator.h"
#include "engine/parallel/layout.h"
#include "engine/sample/sampler.h"
#include "kernels/backend.h"

namespace herd {

struct LlamaWeights;

struct RunnerShape {
  int64_t num_blocks = 0;  // KV pool
  int block_size = 16;
  int max_tokens = 0;  // the most tokens one plan carries (max_num_batched_tokens)
  int max_seqs = 0;    // the most sequences (and logits rows) one plan carries
};

class ModelRunner {
 public:
  // tp: this stage's TP group (null when tp_size == 1); activations: the communicator that
  // carries hidden states between stages, addressed by world rank (null when pp_size == 1).
  ModelRunner(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights, Backend& backend,
              const RunnerShape& shape, std::vector<int32_t> eos_ids, const RankLayout& layout = {},
              Communicator* tp = nullptr, Communicator* activations = nullptr);
  ~ModelRunner();

  // Runs the plan's forward and samples every logits row (one process: the whole model).
  ExecResult run(const ExecPlan& plan);
  // This rank's part of the plan; the result only on the sampling rank (layout.samples()).
  std::optional<ExecResult> run_stage(const ExecPlan& plan);
  const RankLayout& layout() const { return layout_; }
  void set_logits_hook(LogitsHook hook);

 private:
  // Samples the rows of `logits` ([plan.samples.size(), vocab]) into a result.
  ExecResult sample_rows(const ExecPlan& plan, float* logits);
  // A reward model: copies each row's scores ([plan.samples.size(), num_labels]) into a
  // result; nothing is sampled (the logits hook does not see score rows).
  ExecResult score_rows(const ExecPlan& plan, const float* scores);

  ModelConfig cfg_;
  std::shared_ptr<const LlamaWeights> weights_;
  Backend& backend_;
  std::vector<int32_t> eos_ids_;
  RankLayout layout_;
  Communicator* activations_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<LlamaModel> model_;
  Sampler sampler_;
  std::vector<float> logits_;
  bool trace_ = false;
  std::mutex hook_mu_;
  LogitsHook hook_;
};

}  // namespace herd
