// ModelRunner: what one rank runs — its weights (shard), its KV cache, its backend, and the
// sampler where the logits are. The engine core never sees logits: run() returns sampled token
// ids and requested logprobs.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/exec/exec_plan.h"
#include "engine/exec/executor.h"
#include "engine/model/config.h"
#include "engine/model/llama.h"
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
  ModelRunner(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights,
              Backend& backend, const RunnerShape& shape, std::vector<int32_t> eos_ids);
  ~ModelRunner();

  // Runs the plan's forward and samples every logits row.
  ExecResult run(const ExecPlan& plan);
  void set_logits_hook(LogitsHook hook);

 private:
  // Samples the rows of `logits` ([plan.samples.size(), vocab]) into a result.
  ExecResult sample_rows(const ExecPlan& plan, float* logits);

  ModelConfig cfg_;
  std::shared_ptr<const LlamaWeights> weights_;
  Backend& backend_;
  std::vector<int32_t> eos_ids_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<LlamaModel> model_;
  Sampler sampler_;
  std::vector<float> logits_;
  std::mutex hook_mu_;
  LogitsHook hook_;
};

}  // namespace herd
