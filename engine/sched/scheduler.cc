// Scheduler: building a StepPlan (running sequences, preemption, admission). Request
// lifecycle (add, step results, finish, abort) and invariants are in scheduler_lifecycle.cc.
#include "engine/sched/scheduler.h"

#include <algorithm>
#include <stdexcept>
#include <tuple>

namespace herd {

bool Scheduler::Order::operator()(const Sequence* a, const Sequence* b) const {
  return std::make_tuple(a->group().priority(), a->group().arrival(), a->index()) <
         std::make_tuple(b->group().priority(), b->group().arrival(), b->index());
}

int Scheduler::max_len_tokens(const SequenceGroup& g) const {
  return int(g.prompt().size()) + g.max_tokens();
}

void Scheduler::insert_running(Sequence* s) {
  running_.insert(std::upper_bound(running_.begin(), running_.end(), s, Order{}), s);
}

void Scheduler::erase_running(Sequence* s) {
  const auto it = std::find(running_.begin(), running_.end(), s);
  if (it == running_.end()) throw std::logic_error("Scheduler: sequence not running");
  running_.erase(it);
}

void Scheduler::charge(Sequence* s, int taken) {
  if (!reserve()) return;
  if (taken > s->reserve_left_)
    throw std::logic_error("Scheduler: sequence " + s->request_id() + " exceeded its reservation");
  s->reserve_left_ -= taken;
  reserved_total_ -= taken;
}

void Scheduler::add_entry(StepPlan& plan, Sequence* s, int n) {
  ScheduledSeq e;
  e.seq = s;
  e.start = s->num_scheduled_;
  e.num_tokens = n;
  e.token_ids.reserve(n);
  for (int i = 0; i < n; ++i) e.token_ids.push_back(s->token(e.start + i));
  e.block_table = s->table_.blocks;
  e.sample = e.start + n == s->num_tokens();
  s->num_scheduled_ += n;
  ++s->in_flight_;
  plan.num_batched_tokens += n;
  plan.entries.push_back(std::move(e));
}

void Scheduler::preempt(Sequence* s, StepPlan& plan) {
  if (s->in_flight_ > 0) throw std::logic_error("Scheduler: preempting a sequence in flight");
  kv_.free(s->table_);
  s->num_computed_ = 0;
  s->num_scheduled_ = 0;
  s->status_ = SeqStatus::kPreempted;
  ++s->num_preemptions_;
  ++preemptions_;
  erase_running(s);
  waiting_.insert(s);
  plan.preempted.push_back(s);
}

bool Scheduler::release_idle_shared(const SequenceGroup* except) {
  bool released = false;
  for (auto& [id, g] : groups_) {
    if (g.get() == except || g->shared_.empty()) continue;
    bool any_running = false;
    for (const auto& s : g->seqs_) any_running |= s->status_ == SeqStatus::kRunning;
    if (any_running) continue;
    kv_.free(g->shared_);
    released = true;
  }
  return released;
}

// Admits the waiting sequence `s` if it can run now. Sets `stop` when no later sequence should
// be tried this step (strict FCFS on resources).
bool Scheduler::try_admit(Sequence* s, int& budget, StepPlan& plan, bool& stop) {
  SequenceGroup& g = s->group();
  const int bs = kv_.block_size();
  const int shared = g.num_shared_blocks_;
  if (shared > 0 && s->index_ != 0 && !g.shared_made_) return false;  // sample 0 goes first

  std::vector<int32_t> hits;
  int computed;
  if (!g.shared_.empty()) {
    kv_.fork(s->table_, g.shared_, shared);
    computed = shared * bs;
  } else {
    hits = kv_.find_cached_prefix(s->table_, s->key_inputs());
    computed = int(hits.size()) * bs;
  }
  int n = s->num_tokens() - computed;
  if (!config_.enable_chunked_prefill && n > budget) {
    kv_.free(s->table_);
    stop = true;
    return false;
  }
  n = prefill_cap(n, budget);

  if (reserve() && !g.reserved_) {
    // Set aside everything the group may take from the pool: this sample's whole length
    // (minus hits already owned by someone) and each other sample's private part.
    const int full = kv_.blocks_for(max_len_tokens(g));
    int own = kv_.blocks_taken_by(s->table_, max_len_tokens(g), hits);
    int need = own;
    for (const auto& t : g.seqs_)
      if (t.get() != s && !t->finished()) need += full - shared;
    if (kv_.pool().num_free_blocks() - reserved_total_ < need) {
      kv_.free(s->table_);
      blocked_at_ = available_blocks();
      stop = true;
      return false;
    }
    for (const auto& t : g.seqs_) {
      if (t->finished()) continue;
      t->reserve_left_ = t.get() == s ? own : full - shared;
      reserved_total_ += t->reserve_left_;
    }
    g.reserved_ = true;
  }

  int taken = kv_.allocate_slots(s->table_, computed + n, hits);
  while (taken < 0 && !reserve() && release_idle_shared(&g))
    taken = kv_.allocate_slots(s->table_, computed + n, hits);
  if (taken < 0) {
    if (reserve()) throw std::logic_error("Scheduler: reserved admission failed to allocate");
    kv_.free(s->table_);
    blocked_at_ = available_blocks();
    stop = true;
    return false;
  }
  charge(s, taken);
  s->num_computed_ = computed;
  s->num_scheduled_ = computed;
  if (s->num_cached_prompt_tokens_ < 0)
    s->num_cached_prompt_tokens_ = std::min(computed, s->num_prompt_tokens());
  if (config_.enable_prefix_caching) kv_.record_prefix_query(s->num_tokens(), computed);
  s->status_ = SeqStatus::kRunning;
  waiting_.erase(s);
  insert_running(s);
  add_entry(plan, s, n);
  budget -= n;
  // Sample 0 found the shared prompt blocks already computed (a prefix-cache hit): the other
  // samples fork them in this same step instead of waiting for sample 0's first step.
  maybe_share_prompt(g);
  maybe_release_shared(g);
  return true;
}

int Scheduler::prefill_cap(int remaining, int budget) const {
  int n = std::min(remaining, budget);
  if (config_.enable_chunked_prefill && config_.long_prefill_token_threshold > 0)
    n = std::min(n, config_.long_prefill_token_threshold);
  return n;
}

// Gives the running sequence order[i] its tokens this step, preempting (optimistic policy)
// the least important running sequence neither given tokens this step nor named by a plan in
// flight (its blocks are still being written) while the pool is dry. kGone when order[i]
// itself had to be preempted; kWaits when no other victim exists and plans are in flight: it
// keeps its blocks and waits for them to land.
Scheduler::Ran Scheduler::run_running(std::vector<Sequence*>& order, size_t i,
                                      std::vector<char>& scheduled, int& budget, StepPlan& plan) {
  Sequence* s = order[i];
  const int remaining = s->num_tokens() - s->num_scheduled_;
  const int n = prefill_cap(remaining, budget);
  int taken;
  while ((taken = kv_.allocate_slots(s->table_, s->num_scheduled_ + n)) < 0) {
    if (reserve()) throw std::logic_error("Scheduler: reserve policy ran out of blocks");
    if (release_idle_shared(nullptr)) continue;
    size_t v = order.size() - 1;
    while (v > i && (scheduled[v] || order[v]->in_flight_ > 0)) --v;
    // Only order[i] itself is left. While plans are in flight it waits for them to land
    // (they free or release blocks) rather than throw its own KV away; with none in flight
    // it is preempted so that the others can go on.
    if (v == i && !in_flight_.empty()) return Ran::kWaits;
    Sequence* victim = order[v];  // v >= i: order[i] itself is never scheduled yet
    preempt(victim, plan);
    order.erase(order.begin() + std::ptrdiff_t(v));
    scheduled.erase(scheduled.begin() + std::ptrdiff_t(v));
    if (victim == s) return Ran::kGone;
  }
  charge(s, taken);
  add_entry(plan, s, n);
  scheduled[i] = 1;
  budget -= n;
  return Ran::kScheduled;
}

// Sequences one plan may take: ceil(R / micro_batches), R = running sequences (in flight or
// not) plus the waiting ones admission may add (unless the pool turned the queue head away
// and nothing was freed since), so that micro_batches plans in flight split the batch evenly.
int Scheduler::micro_batch_cap() const {
  const int m = config_.micro_batches;
  if (m <= 1) return config_.max_num_seqs;
  int r = int(running_.size());
  if (available_blocks() > blocked_at_)
    r += std::min(int(waiting_.size()), std::max(0, config_.max_num_seqs - r));
  return std::max(1, (r + m - 1) / m);
}

StepPlan Scheduler::schedule() {
  // Groups whose samples no plan in flight names: nobody can read their Sequences any more.
  std::erase_if(retired_, [](const std::shared_ptr<SequenceGroup>& g) {
    for (const auto& s : g->seqs_)
      if (s->in_flight_ > 0) return false;
    return true;
  });
  StepPlan plan;
  int budget = config_.max_num_batched_tokens;
  const size_t cap = size_t(micro_batch_cap());
  bool starved = false;  // a running sequence waits for blocks held by plans in flight

  // 1. Running sequences, most important first: decodes (one token to run) in a first pass,
  // so that no prefill or recompute can take their token, then the rest. Victims of
  // preemption come from the back of the snapshot and never a sequence already given tokens
  // this step or in flight. A sequence whose last plan samples (remaining 0) waits for it to
  // land; one still prefilling known tokens may take its next chunk now, as plans execute in
  // order and the earlier chunk's KV is written first.
  std::vector<Sequence*> order = running_;
  std::vector<char> scheduled(order.size(), 0);
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < order.size() && budget > 0 && plan.entries.size() < cap;) {
      Sequence* s = order[i];
      const int remaining = s->num_tokens() - s->num_scheduled_;
      const bool decode = remaining == 1;
      if (scheduled[i] || remaining <= 0 || decode != (pass == 0) ||
          (!config_.enable_chunked_prefill && remaining > budget)) {
        ++i;
        continue;
      }
      const Ran ran = run_running(order, i, scheduled, budget, plan);
      if (ran == Ran::kGone) continue;  // order[i] is gone
      starved |= ran == Ran::kWaits;
      ++i;
    }
  }

  // 2. Waiting sequences, unless the pool just ran dry (admitting now would only thrash).
  // Strict order: once one cannot be admitted, later ones are not tried — except, under
  // reserve, samples of already reserved requests, which take nothing from anyone (without
  // this a request holding shared prompt blocks for its waiting samples could starve).
  if (plan.preempted.empty() && !starved) {
    bool only_reserved = false;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (budget <= 0 || int(running_.size()) >= config_.max_num_seqs || plan.entries.size() >= cap)
        break;
      Sequence* s = *it++;  // advance first: admission erases s
      if (only_reserved && !s->group().reserved_) continue;
      bool stop = false;
      try_admit(s, budget, plan, stop);
      if (stop && !reserve()) break;
      only_reserved |= stop;
    }
  }
  if (!plan.entries.empty()) {
    plan.id = next_plan_id_++;
    InFlight f{plan.id, {}};
    f.entries.reserve(plan.entries.size());
    for (const ScheduledSeq& e : plan.entries)
      f.entries.push_back(Landing{e.seq, e.start, e.num_tokens, e.sample});
    in_flight_.push_back(std::move(f));
  }
  return plan;
}

}  // namespace herd
