// LlmEngine: the engine core behind Engine::create. It owns the requests, the scheduler
// (engine/sched) and output processing (stop checks, detokenization, deltas); an Executor
// (engine/exec) runs the plans on the model runner(s) and returns sampled token ids. The step
// loop runs on the engine's own thread:
//
//   lock; apply queued aborts;
//         while fewer than max_in_flight plans are in flight: plan = schedule(); submit(plan)
//   unlock
//   wait for the oldest plan's result (no lock held: submitters are never blocked by the model)
//   lock; on_step_done; stop checks; make Output deltas; unlock
//   call the sinks (no lock held, so a sink may call abort() or add_request())
//
// Plans in flight: max_in_flight is the pipeline depth (--micro-batches, default one plan per
// pipeline stage; 1 in one process unless --micro-batches asks for more, which overlaps
// scheduling with the forward). The scheduler counts tokens as scheduled when it plans them
// and never plans a sequence whose sampled token is still in flight; a request aborted while
// a plan names it is retired at once (its final delta goes out) but its sequences and blocks
// stay alive until that plan has landed, and the landed entries are ignored.
//
// add_request() runs the scheduler's admission checks synchronously under the lock, so bad
// requests fail in the caller with InvalidArgument. abort() only queues the id together with
// the serial number of the request live under it: the engine thread applies it at the start of
// the next step (at most one forward later), before any new block is handed out, and sends the
// final kAbort delta — unless that request has finished meanwhile (a new request that reuses
// the id has another serial and is left alone).
//
// Failures: a logits row holding a NaN or an infinity fails only its request (final delta
// with `error`, counted in EngineStats::nonfinite_logit_errors); the other rows of the batch
// are sampled as usual. An exception escaping a step (the backend's forward, e.g. a CUDA
// error, a dead or hung rank, or broken scheduler state) makes the engine unhealthy for good:
// every live request ends with `error`, health() reports the reason and add_request throws
// EngineUnavailable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/api/engine.h"
#include "engine/exec/executor.h"
#include "engine/grammar/constraint.h"
#include "engine/model/config.h"
#include "engine/sample/stop_checker.h"
#include "engine/sched/scheduler.h"
#include "engine/tokenizer/tokenizer.h"
#include "kernels/backend.h"

namespace herd {

struct LlamaWeights;

// Everything an engine is built from, already loaded (Engine::create reads them from disk;
// tests build them in memory).
struct EngineParts {
  ModelConfig config;
  std::shared_ptr<const LlamaWeights> weights;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Backend> backend;  // with weights: LlmEngine runs a LocalExecutor on them
  // Or an executor already built (RankExecutor over MPI ranks; tests). kv_block_bytes is then
  // the most KV bytes one block takes on any rank (it sizes the pool from --kv-cache-gb).
  std::unique_ptr<Executor> executor;
  size_t kv_block_bytes = 0;
};

// The model's eos ids (config.json + generation_config.json), or the tokenizer's.
std::vector<int32_t> eos_ids_of(const ModelConfig& cfg, const Tokenizer& tok);

// The scheduler's config from the engine options; kv_block_bytes (the most bytes one KV block
// takes on any rank) turns --kv-cache-gb into a block count. Throws InvalidArgument.
SchedulerConfig make_scheduler_config(const EngineOptions& o, const ModelConfig& cfg,
                                      size_t kv_block_bytes);

class LlmEngine final : public Engine {
 public:
  LlmEngine(EngineParts parts, const EngineOptions& opts);
  ~LlmEngine() override;

  void add_request(Request req, OutputSink sink) override;
  void abort(const std::string& request_id) override;
  std::vector<std::vector<Output>> generate(std::vector<Request> reqs) override;

  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const ModelConfig& model_config() const override { return config_; }
  int max_model_len() const override { return sched_config_.max_model_len; }
  EngineStats stats() const override;
  EngineHealth health() const override;
  void shutdown() override;

  // Test hook: check the scheduler's invariants after every step (throws on the engine thread,
  // which makes the engine unhealthy and fails every live request with the message).
  void set_check_invariants(bool on) { check_invariants_ = on; }

  // Test hook: called on the engine thread for every logits row about to be sampled, after
  // the forward, with no lock held (it may call abort() or add_request()); it may change the
  // row (e.g. poison it with a NaN). Set it before adding requests.
  // Runs on the executor's thread (LocalExecutor only).
  void set_logits_hook(LogitsHook hook);

 private:
  struct SampleState {
    std::unique_ptr<StopChecker> stop;
    // Constrained decoding: the sample's grammar state; advanced as its tokens land (the
    // scheduler never plans a sample whose previous plan is in flight, so the state is
    // current whenever a plan is built).
    std::unique_ptr<grammar::SequenceConstraint> constraint;
  };
  struct RequestState {
    Request req;
    OutputSink sink;
    uint64_t seed = 0;
    std::vector<SampleState> samples;
    std::shared_ptr<SequenceGroup> group;
    bool started = false;  // some sample was scheduled (no longer counts as waiting)
    int completion_tokens = 0;
    uint64_t serial = 0;  // unique per engine: tells a reused id's requests apart
  };
  struct PendingAbort {
    std::string id;
    uint64_t serial = 0;
  };
  using Delivery = std::pair<OutputSink, Output>;
  struct InFlight {
    StepPlan plan;
    std::future<ExecResult> result;
  };

  void add_locked(Request req, OutputSink sink, bool bypass_queue_limit);
  // The compiled response format of `p` (null when unconstrained); throws InvalidArgument.
  std::shared_ptr<grammar::TokenMasker> constraint_for(const SamplingParams& p);
  void loop();
  // Runs one step, appending the deltas to deliver; false when there was nothing to do.
  bool run_step(std::vector<Delivery>& out);
  // The grammar mask one sample row of a plan needs (computed by fill_masks).
  struct MaskJob {
    grammar::SequenceConstraint* constraint;
    std::vector<int32_t> end_ids;  // eos (unless ignored) and stop_token_ids
    size_t row;                    // index into the plan's samples
  };
  ExecPlan make_exec_plan_locked(const StepPlan& plan, std::vector<MaskJob>& mask_jobs);
  TokenMasks fill_masks(const std::vector<MaskJob>& jobs, size_t rows) const;
  void land_locked(const StepPlan& plan, ExecResult& r, std::vector<Delivery>& out);
  void apply_aborts_locked(std::vector<Delivery>& out);
  void finish_request_locked(RequestState& rs, std::vector<Delivery>& out);
  void fail_all_locked(const std::string& error, std::vector<Delivery>& out);
  // Final deltas (kAbort, `error`) for the samples of rs not yet finished, then retires it.
  void end_request_locked(RequestState& rs, const std::string& error, std::vector<Delivery>& out);
  // The delta of a score request (reward model): the scores of result row `row`.
  Output score_output(const RequestState& rs, const ExecResult& r, size_t row) const;
  Output final_abort_output(const RequestState& rs, int index, const std::string& error) const;
  static void deliver(std::vector<Delivery>& out);

  ModelConfig config_;
  std::shared_ptr<const LlamaWeights> weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Backend> backend_;
  EngineOptions opts_;
  SchedulerConfig sched_config_;
  std::vector<int32_t> eos_ids_;
  std::mutex constraints_mu_;  // guards the lazy creation of constraints_
  std::unique_ptr<grammar::ConstraintCache> constraints_;  // built on the first constrained request

  std::unique_ptr<Executor> executor_;  // after backend_: destroyed before it
  int max_in_flight_ = 1;
  bool trace_ = false;  // HERD_TRACE_STEPS=1: a line per plan submitted (where a pipeline idles)
  // Engine-thread only (no lock needed).
  std::deque<InFlight> in_flight_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::unique_ptr<Scheduler> sched_;
  std::unordered_map<std::string, std::unique_ptr<RequestState>> requests_;
  std::deque<PendingAbort> pending_aborts_;
  uint64_t next_serial_ = 1;
  int num_unstarted_ = 0;
  bool healthy_ = true;
  std::string unhealthy_reason_;
  int64_t nonfinite_logit_errors_ = 0;
  bool stopping_ = false;
  bool new_work_ = false;  // a request was added since the last planning
  bool check_invariants_ = false;
  int64_t prompt_tokens_ = 0;
  int64_t generation_tokens_ = 0;
  int64_t steps_ = 0;
  int64_t steps_submitted_ = 0;

  std::thread thread_;
};

}  // namespace herd
