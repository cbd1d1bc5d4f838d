#include "engine/exec/model_runner.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/model/weights.h"

namespace herd {

ModelRunner::ModelRunner(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights,
                         Backend& backend, const RunnerShape& shape,
                         std::vector<int32_t> eos_ids)
    : cfg_(cfg),
      weights_(std::move(weights)),
      backend_(backend),
      eos_ids_(std::move(eos_ids)),
      sampler_(int(cfg.vocab_size)) {
  kv_ = std::make_unique<KvCache>(backend_, cfg_, shape.num_blocks, shape.block_size);
  model_ = std::make_unique<LlamaModel>(cfg_, weights_, backend_, shape.max_tokens,
                                        shape.max_seqs);
  logits_.resize(size_t(shape.max_seqs) * size_t(cfg_.vocab_size));
}

ModelRunner::~ModelRunner() = default;

void ModelRunner::set_logits_hook(LogitsHook hook) {
  std::lock_guard<std::mutex> lock(hook_mu_);
  hook_ = std::move(hook);
}

ExecResult ModelRunner::run(const ExecPlan& plan) {
  if (plan.samples.size() != plan.input.logits_rows.size())
    throw std::logic_error("ModelRunner: " + std::to_string(plan.samples.size()) +
                           " sample specs for " + std::to_string(plan.input.logits_rows.size()) +
                           " logits rows");
  model_->forward(plan.input, *kv_, logits_.data());
  return sample_rows(plan, logits_.data());
}

ExecResult ModelRunner::sample_rows(const ExecPlan& plan, float* logits) {
  LogitsHook hook;
  {
    std::lock_guard<std::mutex> lock(hook_mu_);
    hook = hook_;
  }
  const size_t vocab = size_t(cfg_.vocab_size);
  ExecResult r;
  r.id = plan.id;
  r.tokens.reserve(plan.samples.size());
  for (size_t i = 0; i < plan.samples.size(); ++i) {
    const SampleSpec& s = plan.samples[i];
    const std::span<float> row(logits + i * vocab, vocab);
    if (hook) hook(s.request_id, int(s.sample_index), row);
    if (!std::all_of(row.begin(), row.end(), [](float x) { return std::isfinite(x); })) {
      // Sampling would pick an arbitrary token (argmax of a NaN row is token 0): the engine
      // core fails this request alone; the placeholder keeps the rows aligned.
      r.tokens.push_back(0);
      r.logprobs.emplace_back();
      r.nonfinite.push_back(1);
      continue;
    }
    SampleInput in;
    in.params = &s.params;
    in.seed = s.seed;
    in.sample_index = s.sample_index;
    in.num_generated = s.num_generated;
    in.prompt_ids = s.prompt_ids;
    in.output_ids = s.output_ids;
    in.eos_ids = eos_ids_;
    SampleResult sr = sampler_.sample(row, in);
    r.tokens.push_back(sr.token);
    r.logprobs.push_back(std::move(sr.logprob));
    r.nonfinite.push_back(0);
  }
  return r;
}

}  // namespace herd
