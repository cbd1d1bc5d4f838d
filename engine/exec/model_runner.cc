#include "engine/exec/model_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>

#include "engine/exec/plan_codec.h"
#include "engine/model/weights.h"

namespace herd {

ModelRunner::ModelRunner(const ModelConfig& cfg, std::shared_ptr<const LlamaWeights> weights,
                         Backend& backend, const RunnerShape& shape, std::vector<int32_t> eos_ids,
                         const RankLayout& layout, Communicator* tp, Communicator* activations)
    : cfg_(cfg),
      weights_(std::move(weights)),
      backend_(backend),
      eos_ids_(std::move(eos_ids)),
      layout_(layout),
      activations_(activations),
      sampler_(int(cfg.vocab_size)) {
  if (layout_.pp_size > 1 && !activations_)
    throw std::logic_error("ModelRunner: pipeline stages need an activations communicator");
  kv_ = std::make_unique<KvCache>(backend_, cfg_, shape.num_blocks, shape.block_size, layout_);
  model_ = std::make_unique<LlamaModel>(cfg_, weights_, backend_, shape.max_tokens, shape.max_seqs,
                                        layout_, tp);
  // HERD_TRACE_STEPS=1: one line per plan and rank on stderr (where a pipeline waits).
  const char* trace = std::getenv("HERD_TRACE_STEPS");
  trace_ = trace && *trace && std::string(trace) != "0";
  if (layout_.last_stage()) logits_.resize(size_t(shape.max_seqs) * size_t(cfg_.head_rows()));
}

ModelRunner::~ModelRunner() = default;

void ModelRunner::set_logits_hook(LogitsHook hook) {
  std::lock_guard<std::mutex> lock(hook_mu_);
  hook_ = std::move(hook);
}

ExecResult ModelRunner::run(const ExecPlan& plan) {
  std::optional<ExecResult> r = run_stage(plan);
  if (!r) throw std::logic_error("ModelRunner::run on a rank that does not sample");
  return std::move(*r);
}

std::optional<ExecResult> ModelRunner::run_stage(const ExecPlan& plan) {
  if (plan.samples.size() != plan.input.logits_rows.size())
    throw std::logic_error("ModelRunner: " + std::to_string(plan.samples.size()) +
                           " sample specs for " + std::to_string(plan.input.logits_rows.size()) +
                           " logits rows");
  const int64_t tokens = int64_t(plan.input.token_ids.size());
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = Clock::now();
  Clock::time_point t1 = t0, t2 = t0;
  // Hidden states travel between the same TP rank of neighbouring stages (every TP rank holds
  // the whole residual stream after its all-reduces); plans arrive in order on each link.
  if (!layout_.first_stage()) {
    Tensor h = model_->hidden_states(tokens);
    activations_->recv(h.data, h.bytes(), layout_.world_rank() - layout_.tp_size, kTagHidden);
  }
  t1 = Clock::now();
  model_->forward(plan.input, *kv_, layout_.last_stage() ? logits_.data() : nullptr);
  t2 = Clock::now();
  std::optional<ExecResult> result;
  if (!layout_.last_stage()) {
    const Tensor h = model_->hidden_states(tokens);
    activations_->send(h.data, h.bytes(), layout_.world_rank() + layout_.tp_size, kTagHidden);
  } else if (layout_.samples()) {
    result = cfg_.is_reward_model() ? score_rows(plan, logits_.data())
                                    : sample_rows(plan, logits_.data());
  }
  if (trace_) {
    auto ms = [](Clock::time_point a, Clock::time_point b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    std::fprintf(stderr,
                 "[herd trace] t=%.1f rank %d plan %llu: %lld tokens %zu seqs, recv %.1f ms, "
                 "forward %.1f ms, send/sample %.1f ms\n",
                 ms(Clock::time_point{}, t0), layout_.world_rank(), (unsigned long long)plan.id,
                 (long long)tokens, plan.input.seq_lens.size(), ms(t0, t1), ms(t1, t2),
                 ms(t2, Clock::now()));
  }
  return result;
}

ExecResult ModelRunner::score_rows(const ExecPlan& plan, const float* scores) {
  const size_t labels = size_t(cfg_.num_labels), rows = plan.samples.size();
  ExecResult r;
  r.id = plan.id;
  r.tokens.assign(rows, 0);
  r.logprobs.resize(rows);
  r.scores.assign(scores, scores + rows * labels);
  for (size_t i = 0; i < rows; ++i) {
    const float* row = scores + i * labels;
    r.nonfinite.push_back(
        std::all_of(row, row + labels, [](float x) { return std::isfinite(x); }) ? 0 : 1);
  }
  return r;
}

ExecResult ModelRunner::sample_rows(const ExecPlan& plan, float* logits) {
  LogitsHook hook;
  {
    std::lock_guard<std::mutex> lock(hook_mu_);
    hook = hook_;
  }
  const size_t vocab = size_t(cfg_.vocab_size);
  // Masks computed while the forward ran: usually ready by now; get() rethrows a failure.
  const TokenMasks* late = plan.late_masks.valid() ? &plan.late_masks.get() : nullptr;
  if (late && late->size() != plan.samples.size())
    throw std::logic_error("late masks for " + std::to_string(late->size()) + " rows, plan has " +
                           std::to_string(plan.samples.size()));
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
    in.allowed_tokens = late ? std::span<const uint64_t>((*late)[i]) : s.allowed_tokens;
    SampleResult sr = sampler_.sample(row, in);
    r.tokens.push_back(sr.token);
    r.logprobs.push_back(std::move(sr.logprob));
    r.nonfinite.push_back(0);
  }
  return r;
}

}  // namespace herd
