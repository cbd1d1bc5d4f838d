// Scheduler: continuous batching over a KvCacheManager. Pure logic — no model, no device.
//
// The protocol, with up to N plans in flight (N = pipeline stages / micro-batches; the engine
// today keeps N = 1: schedule() and on_step_done() strictly alternate):
//   StepPlan plan = sched.schedule();   // what to run next (and who was preempted)
//   ... hand plan to the executor; schedule() again while fewer than N plans are in flight ...
//   // the executor runs plans in the order they were made; when the oldest one is done:
//   auto done = sched.on_step_done(oldest, sampled);  // append tokens, advance, length limits
//   for each sampled sequence not in `done`: if the engine's stop checker says so,
//       sched.finish(seq, FinishReason::kStop);
// The in-flight contract:
//   - Tokens count as scheduled when the plan is made (Sequence::num_scheduled); they count as
//     computed (num_computed, KV committed to the prefix cache) when the plan lands. The next
//     plan gives a sequence the tokens after the ones already planned.
//   - A sequence whose plan samples (its next token is not known yet) is not scheduled again
//     until that plan lands. One still prefilling known tokens (a chunked prompt or a
//     recompute) may take its next chunk in the next plan: plans execute in order, so the KV
//     of the earlier chunk is written first. So one long prompt can fill several stages.
//   - Non-empty plans get increasing ids and must land in that order (std::logic_error
//     otherwise); an empty plan is never in flight. num_in_flight() counts the others.
//   - No block a plan in flight writes or reads is handed to anyone else: preemption never
//     picks a sequence named by a plan in flight (if no other victim exists, the sequence
//     that needs the block waits for the plans in flight), and a sequence finished or aborted
//     while in flight keeps its blocks until the last plan naming it lands; they are then
//     freed without being committed to the prefix cache (the landed entries of finished
//     sequences are skipped: no token appended).
//   - ScheduledSeq::block_table is a copy, so a plan stays readable after later schedule()
//     calls grow the sequence's table.
//   - With micro_batches = M > 1 a plan takes at most ceil(R / M) sequences (R = running
//     sequences, in flight or not, plus the waiting ones admission may add), so that M plans
//     in flight split the batch evenly: with M = 2 and 8 decodes, plans alternate between two
//     halves of 4. max_num_batched_tokens stays a per-plan budget.
// abort(request_id) and finish() may be called between any two calls (from the engine thread:
// the class is not thread-safe), including while the sequence is in flight.
//
// schedule() gives the token budget (max_num_batched_tokens) to running sequences first, in
// two passes over them, most important first ((priority, arrival, sample index) ascending):
// first every decode (one token left to run) gets its token, then the running sequences that
// still prefill (a chunked prompt, or a preempted one recomputing) share what is left. Then it
// admits waiting ones in the same order, up to max_num_seqs running. A prefill takes
// min(remaining tokens, long_prefill_token_threshold if set, budget) — so a long prompt is
// prefilled in chunks when enable_chunked_prefill is on, and an 8k-token prompt or an old
// request recomputing after preemption can neither take a decode's token nor the whole budget
// of a step; when chunking is off a sequence runs all its remaining tokens at once or waits
// (max_num_batched_tokens must then be >= max_model_len).
//
// Admission policies:
//   reserve     admits a request only when the pool can set aside every block it may ever
//               need: prompt + max_tokens for all n samples, shared prompt blocks counted once.
//               Nothing is ever preempted (the Llama 3 paper's choice for rejection sampling).
//               When the queue head cannot be reserved, later requests wait too (no
//               overtaking), except samples of already reserved requests.
//   optimistic  admits as soon as the blocks for the tokens it runs now are free. When a
//               running sequence cannot get a block, first idle shared-prompt blocks are let
//               go, then the least important (newest) running sequence that no plan in
//               flight names is preempted: its blocks are freed and it goes back to the
//               waiting queue, where its arrival order puts it ahead of later requests; its
//               outputs are kept and recomputed.
//
// n > 1 samples of one prompt: S = (prompt length - 1) / block_size full prompt blocks are
// shared. Sample 0 is admitted first and prefills the prompt; once it has computed the first S
// blocks, the group takes a reference on them (SequenceGroup's shared table) and every other
// sample, when admitted, forks them (refcount, no copy) and computes only the tail — the last
// partial block, at most block_size tokens, whose last token's logits it samples from. Until
// then the other samples wait (skipped, not blocking the queue). When sample 0 finds the S
// blocks already computed at its admission (prefix-cache hit), the group shares them at once,
// so every sample is admitted in the same step. The shared table is dropped
// when no sample waits any more (or, under optimistic, when the pool runs dry and none of the
// group runs). This needs no prefix cache and no device-side block copy.
//
// Prefix caching: a newly admitted sequence takes the longest cached run of full blocks of its
// tokens (never all of them) and starts with num_computed past it. Blocks become cached when
// the step that computes them is done, so identical prompts admitted in the same step each
// compute their own blocks (see engine/README.md for why they are not held back); one admitted
// a step later hits them.
//
// Lifetimes: the scheduler owns every SequenceGroup (shared_ptr; add_request hands the caller
// one too). Sequence pointers in a StepPlan stay valid while the plan is in flight and after
// it lands until the next schedule(): a finished group is kept (retired_) until the first
// schedule() after no plan in flight names any of its samples.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/api/engine.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/sched/sequence.h"
#include "engine/sched/step_plan.h"

namespace herd {

struct SchedulerConfig {
  int num_blocks = 1024;
  int block_size = 16;
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int max_model_len = 8192;  // must fit the pool: <= num_blocks * block_size
  bool enable_chunked_prefill = true;
  bool enable_prefix_caching = true;
  AdmissionPolicy policy = AdmissionPolicy::kOptimistic;
  std::optional<std::string> cache_salt;  // prefix-cache key salt; unset = random per manager
  // With chunked prefill: the most prompt (or recompute) tokens one sequence runs in one step
  // (vLLM's long_prefill_token_threshold); 0 = no cap beyond max_num_batched_tokens.
  int long_prefill_token_threshold = 0;
  // Plans the executor keeps in flight at once (pipeline stages / micro-batches). When > 1 a
  // plan takes at most ceil(R / micro_batches) sequences, R = running sequences (in-flight ones
  // included) plus those admission may still add, so that the plans in flight split the batch
  // evenly instead of the first one taking everything and the next finding only sequences
  // that wait for their sampled token. 1 = no cap.
  int micro_batches = 1;
};

struct SchedulerStats {
  int running = 0;  // sequences
  int waiting = 0;  // sequences (incl. preempted)
  int64_t preemptions = 0;
  KvStats kv;
};

class Scheduler {
 public:
  // Throws herd::InvalidArgument naming the config field at fault.
  explicit Scheduler(const SchedulerConfig& config);

  // Queues a request. Throws herd::InvalidArgument (param: request_id, prompt, n, max_tokens)
  // for a duplicate live id, an empty prompt or one with no room to generate, n outside
  // [1, max_num_seqs], max_tokens < 1, or a request that could never fit the pool.
  std::shared_ptr<SequenceGroup> add_request(NewRequest req);

  // Makes the next plan. It may be called again before earlier plans have landed (see the
  // in-flight contract at the top). A non-empty plan is in flight until on_step_done(plan);
  // an empty one is never in flight.
  StepPlan schedule();

  // Lands a plan: `sampled` holds one token per entry with `sample` set, in entry order.
  // Non-empty plans must land in the order they were made: throws std::logic_error for any
  // other plan than the oldest in flight (std::invalid_argument for a wrong number of sampled
  // tokens; the plan then stays in flight). Landing an empty plan is a no-op. Returns the
  // sequences it finished with kLength (max_tokens reached or max_model_len reached), and the
  // score requests (NewRequest::prefill_only) it finished with kStop, their prompt computed.
  std::vector<Sequence*> on_step_done(const StepPlan& plan, std::span<const int32_t> sampled);

  // Non-empty plans made and not landed yet.
  int num_in_flight() const { return int(in_flight_.size()); }

  // Finishes one sample (the engine's stop checker decided), freeing its blocks. No-op if it
  // already finished.
  void finish(Sequence* seq, FinishReason reason);

  // Finishes every unfinished sample of the request with kAbort, whatever its state. False for
  // an unknown (or already finished) id.
  bool abort(const std::string& request_id);

  std::shared_ptr<SequenceGroup> find(const std::string& request_id) const;
  bool has_unfinished() const { return !groups_.empty(); }
  int num_running() const { return int(running_.size()); }
  int num_waiting() const { return int(waiting_.size()); }
  SchedulerStats stats() const;
  const SchedulerConfig& config() const { return config_; }
  const KvCacheManager& kv() const { return kv_; }

  // Throws std::logic_error naming the first broken invariant (block states and ref counts,
  // queue membership vs status, budgets, reservations).
  void check_invariants() const;

 private:
  struct Order {
    bool operator()(const Sequence* a, const Sequence* b) const;
  };
  // What a plan in flight will do to each sequence it names, kept so that landing and
  // check_invariants() need not trust the caller's copy of the plan.
  struct Landing {
    Sequence* seq;
    int start;
    int num_tokens;
    bool sample;
  };
  struct InFlight {
    int64_t id;
    std::vector<Landing> entries;
  };
  enum class Ran { kScheduled, kGone, kWaits };
  bool reserve() const { return config_.policy == AdmissionPolicy::kReserve; }
  int max_len_tokens(const SequenceGroup& g) const;
  void add_entry(StepPlan& plan, Sequence* s, int n);
  bool try_admit(Sequence* s, int& budget, StepPlan& plan, bool& stop);
  void preempt(Sequence* s, StepPlan& plan);
  void charge(Sequence* s, int taken);
  int prefill_cap(int remaining, int budget) const;
  Ran run_running(std::vector<Sequence*>& order, size_t i, std::vector<char>& scheduled,
                  int& budget, StepPlan& plan);
  int micro_batch_cap() const;
  int64_t available_blocks() const { return kv_.pool().num_free_blocks() - reserved_total_; }
  void insert_running(Sequence* s);
  void erase_running(Sequence* s);
  void maybe_share_prompt(SequenceGroup& g);
  void maybe_release_shared(SequenceGroup& g);
  bool release_idle_shared(const SequenceGroup* except);

  SchedulerConfig config_;
  KvCacheManager kv_;
  std::unordered_map<std::string, std::shared_ptr<SequenceGroup>> groups_;
  // Finished groups, dropped by the first schedule() after no plan in flight names any of
  // their samples (so Sequence pointers of landed plans stay valid until the next schedule()).
  std::vector<std::shared_ptr<SequenceGroup>> retired_;
  std::deque<InFlight> in_flight_;  // oldest first
  int64_t next_plan_id_ = 0;
  // available_blocks() when admission last stopped because the pool (or reservations) could
  // not take the queue head: until more blocks are free, waiting sequences do not count
  // towards the micro-batch cap's R.
  int64_t blocked_at_ = -1;
  std::set<Sequence*, Order> waiting_;
  std::vector<Sequence*> running_;  // sorted by Order
  int64_t next_arrival_ = 0;
  int64_t preemptions_ = 0;
  int64_t reserved_total_ = 0;  // sum of reserve_left_ (reserve policy)
};

}  // namespace herd
