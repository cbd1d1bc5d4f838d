// Scheduler: request lifecycle (add, step results, finish, abort), shared prompt blocks of
// n > 1 samples, stats and invariant checks.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "engine/common/error.h"
#include "engine/sched/scheduler.h"

namespace herd {

namespace {
[[noreturn]] void broken(const std::string& what) {
  throw std::logic_error("Scheduler invariant broken: " + what);
}
}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config)
    : config_(config),
      kv_(config.num_blocks, config.block_size, config.enable_prefix_caching, config.cache_salt) {
  if (config.max_num_seqs < 1) throw InvalidArgument("max_num_seqs", "max_num_seqs must be >= 1");
  if (config.max_num_batched_tokens < 1)
    throw InvalidArgument("max_num_batched_tokens", "max_num_batched_tokens must be >= 1");
  if (config.long_prefill_token_threshold < 0)
    throw InvalidArgument("long_prefill_token_threshold",
                          "long_prefill_token_threshold must be >= 0 (0 = no cap)");
  if (config.max_model_len < 2)
    throw InvalidArgument("max_model_len", "max_model_len must be >= 2");
  if (int64_t(config.max_model_len) > int64_t(config.num_blocks) * config.block_size)
    throw InvalidArgument("max_model_len",
                          "max_model_len " + std::to_string(config.max_model_len) +
                              " exceeds the KV cache capacity of " +
                              std::to_string(int64_t(config.num_blocks) * config.block_size) +
                              " tokens");
  if (config.micro_batches < 1)
    throw InvalidArgument("micro_batches", "micro_batches must be >= 1");
  if (!config.enable_chunked_prefill && config.max_num_batched_tokens < config.max_model_len)
    throw InvalidArgument(
        "max_num_batched_tokens",
        "without chunked prefill max_num_batched_tokens must be >= max_model_len");
}

std::shared_ptr<SequenceGroup> Scheduler::add_request(NewRequest req) {
  if (groups_.count(req.request_id))
    throw InvalidArgument("request_id", "request id '" + req.request_id + "' is already in use");
  if (!req.prompt || req.prompt->empty()) throw InvalidArgument("prompt", "the prompt is empty");
  const int plen = int(req.prompt->size());
  if (req.prefill_only) {
    if (plen > config_.max_model_len)
      throw InvalidArgument("prompt", "prompt of " + std::to_string(plen) +
                                          " tokens exceeds max_model_len " +
                                          std::to_string(config_.max_model_len));
    if (req.n != 1) throw InvalidArgument("n", "a score request has n = 1");
  } else if (plen >= config_.max_model_len)
    throw InvalidArgument("prompt", "prompt of " + std::to_string(plen) +
                                        " tokens leaves no room to generate within max_model_len " +
                                        std::to_string(config_.max_model_len));
  if (req.n < 1 || req.n > config_.max_num_seqs)
    throw InvalidArgument(
        "n", "n must be in [1, max_num_seqs=" + std::to_string(config_.max_num_seqs) + "]");
  if (req.max_tokens < 1 && !req.prefill_only)
    throw InvalidArgument("max_tokens", "max_tokens must be >= 1");

  auto g = std::make_shared<SequenceGroup>();
  g->request_id_ = req.request_id;
  g->prompt_ = std::move(req.prompt);
  g->priority_ = req.priority;
  g->arrival_ = next_arrival_++;
  g->prefill_only_ = req.prefill_only;
  // A score request never has output tokens: its reservation is the prompt alone.
  g->max_tokens_ = req.prefill_only ? 0 : std::min(req.max_tokens, config_.max_model_len - plen);
  g->cache_salt_ = std::move(req.cache_salt);
  g->extra_keys_ = std::move(req.extra_keys);
  g->num_shared_blocks_ = req.n > 1 ? (plen - 1) / kv_.block_size() : 0;
  g->handle = req.handle;

  if (reserve()) {
    const int full = kv_.blocks_for(max_len_tokens(*g));
    const int64_t need = full + int64_t(req.n - 1) * (full - g->num_shared_blocks_);
    if (need > kv_.pool().num_blocks())
      throw InvalidArgument(
          "max_tokens", "the request needs " + std::to_string(need) +
                            " KV blocks for prompt + max_tokens of all n samples; the pool has " +
                            std::to_string(kv_.pool().num_blocks()));
  }
  for (int i = 0; i < req.n; ++i) {
    g->seqs_.push_back(std::make_unique<Sequence>(g.get(), i));
    waiting_.insert(g->seqs_.back().get());
  }
  groups_.emplace(g->request_id_, g);
  return g;
}

std::shared_ptr<SequenceGroup> Scheduler::find(const std::string& request_id) const {
  const auto it = groups_.find(request_id);
  return it == groups_.end() ? nullptr : it->second;
}

void Scheduler::maybe_share_prompt(SequenceGroup& g) {
  const int shared = g.num_shared_blocks_;
  if (shared == 0 || g.shared_made_) return;
  Sequence& leader = *g.seqs_[0];
  if (leader.status_ != SeqStatus::kRunning || leader.num_computed_ < shared * kv_.block_size())
    return;
  kv_.fork(g.shared_, leader.table_, shared);
  g.shared_made_ = true;
  maybe_release_shared(g);
}

void Scheduler::maybe_release_shared(SequenceGroup& g) {
  if (g.shared_.empty()) return;
  for (const auto& s : g.seqs_)
    if (s->status_ == SeqStatus::kWaiting || s->status_ == SeqStatus::kPreempted) return;
  kv_.free(g.shared_);
}

std::vector<Sequence*> Scheduler::on_step_done(const StepPlan& plan,
                                               std::span<const int32_t> sampled) {
  if (int(sampled.size()) != plan.num_to_sample())
    throw std::invalid_argument("on_step_done: " + std::to_string(sampled.size()) +
                                " sampled tokens for " + std::to_string(plan.num_to_sample()) +
                                " sampling entries");
  if (plan.entries.empty()) return {};  // never in flight: nothing to land
  if (in_flight_.empty() || in_flight_.front().id != plan.id)
    throw std::logic_error(
        "on_step_done: plan " + std::to_string(plan.id) + " landed out of order (" +
        (in_flight_.empty() ? std::string("none in flight")
                            : "oldest in flight is " + std::to_string(in_flight_.front().id)) +
        ")");
  const InFlight& f = in_flight_.front();
  if (f.entries.size() != plan.entries.size())
    throw std::logic_error("on_step_done: plan " + std::to_string(plan.id) + " was changed");
  for (size_t i = 0; i < f.entries.size(); ++i)
    if (f.entries[i].seq != plan.entries[i].seq ||
        f.entries[i].num_tokens != plan.entries[i].num_tokens)
      throw std::logic_error("on_step_done: plan " + std::to_string(plan.id) + " was changed");
  const std::vector<Landing> landed = std::move(in_flight_.front().entries);
  in_flight_.pop_front();

  std::vector<Sequence*> finished;
  size_t k = 0;
  for (const Landing& e : landed) {
    const int32_t token = e.sample ? sampled[k++] : 0;
    Sequence* s = e.seq;
    --s->in_flight_;
    if (s->status_ != SeqStatus::kRunning) {
      // Finished or aborted while in flight: its KV is not committed to the prefix cache (it
      // may belong to an aborted request), and its blocks go back once no plan writes them.
      if (!s->finished()) throw std::logic_error("on_step_done: landed a sequence not running");
      if (s->in_flight_ == 0) kv_.free(s->table_);
      continue;
    }
    if (e.start != s->num_computed_) throw std::logic_error("on_step_done: stale plan entry");
    s->num_computed_ += e.num_tokens;
    kv_.commit_computed(s->table_, s->key_inputs(), s->num_computed_);
    if (s->group().prefill_only()) {
      // A score request ends with its prompt: nothing appended, no block for an output token.
      if (e.sample) {
        finish(s, FinishReason::kStop);
        finished.push_back(s);
      }
      continue;
    }
    if (e.sample) s->output_.push_back(token);
    maybe_share_prompt(s->group());
    if (int(s->output_.size()) >= s->group().max_tokens() ||
        s->num_tokens() >= config_.max_model_len) {
      finish(s, FinishReason::kLength);
      finished.push_back(s);
    }
  }
  return finished;
}

void Scheduler::finish(Sequence* s, FinishReason reason) {
  if (s->finished()) return;
  if (s->status_ == SeqStatus::kRunning) {
    erase_running(s);
  } else {
    waiting_.erase(s);
  }
  // A plan in flight may still write these blocks: they are freed when the last one lands.
  if (s->in_flight_ == 0) kv_.free(s->table_);
  reserved_total_ -= s->reserve_left_;
  s->reserve_left_ = 0;
  s->status_ = SeqStatus::kFinished;
  s->finish_reason_ = reason;
  SequenceGroup& g = s->group();
  maybe_release_shared(g);
  if (g.finished()) {
    const auto it = groups_.find(g.request_id_);
    // Keeps `s` valid for plans in flight and until the next schedule() after they land.
    retired_.push_back(it->second);
    groups_.erase(it);
  }
}

bool Scheduler::abort(const std::string& request_id) {
  const auto g = find(request_id);
  if (!g) return false;
  for (const auto& s : g->seqs_) finish(s.get(), FinishReason::kAbort);
  return true;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st;
  st.running = num_running();
  st.waiting = num_waiting();
  st.preemptions = preemptions_;
  st.kv = kv_.stats();
  return st;
}

void Scheduler::check_invariants() const {
  std::vector<const BlockTable*> tables;
  size_t live = 0;
  int64_t reserved = 0;
  // Plans in flight, per sequence, oldest first.
  std::unordered_map<const Sequence*, std::vector<const Landing*>> flying;
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    if (i > 0 && in_flight_[i].id <= in_flight_[i - 1].id) broken("plans in flight out of order");
    for (const Landing& e : in_flight_[i].entries) flying[e.seq].push_back(&e);
  }
  size_t named = 0;  // sequences named in flight that belong to a live or retired group
  auto check_group = [&](const SequenceGroup& g, bool retired) {
    if (!g.shared_.empty()) {
      if (g.shared_.num_blocks() != g.num_shared_blocks_)
        broken(g.request_id_ + ": shared table size");
      tables.push_back(&g.shared_);
    }
    for (const auto& sp : g.seqs_) {
      const Sequence& s = *sp;
      const std::string id = g.request_id_ + "/" + std::to_string(s.index_);
      tables.push_back(&s.table_);
      if (s.reserve_left_ < 0) broken(id + ": negative reservation");
      reserved += s.reserve_left_;
      if (s.num_scheduled_ < s.num_computed_) broken(id + ": scheduled behind computed");
      const auto fit = flying.find(&s);
      const size_t nf = fit == flying.end() ? 0 : fit->second.size();
      named += nf > 0;
      if (int(nf) != s.in_flight_) broken(id + ": in-flight count out of sync");
      if (s.status_ != SeqStatus::kFinished && nf > 0) {
        // Its plans in flight continue each other from num_computed to num_scheduled, and a
        // sampling entry (whose token is not known yet) is its last.
        int at = s.num_computed_;
        for (size_t j = 0; j < nf; ++j) {
          const Landing& e = *fit->second[j];
          if (e.start != at) broken(id + ": plans in flight do not continue each other");
          if (e.sample && j + 1 != nf) broken(id + ": scheduled again before its sample landed");
          if (e.sample != (e.start + e.num_tokens == s.num_tokens()))
            broken(id + ": sampling entry not at the end of its known tokens");
          at += e.num_tokens;
        }
        if (at != s.num_scheduled_) broken(id + ": scheduled tokens not in flight");
      } else if (s.status_ != SeqStatus::kFinished && s.num_scheduled_ != s.num_computed_) {
        broken(id + ": scheduled tokens without a plan in flight");
      }
      switch (s.status_) {
        case SeqStatus::kFinished:
          if (!s.table_.empty() && s.in_flight_ == 0)
            broken(id + ": finished but holds blocks no plan in flight names");
          if (s.reserve_left_ != 0) broken(id + ": finished but holds a reservation");
          break;
        case SeqStatus::kWaiting:
        case SeqStatus::kPreempted:
          ++live;
          if (retired) broken(id + ": live in a retired group");
          if (!waiting_.count(const_cast<Sequence*>(&s))) broken(id + ": waiting but not queued");
          if (!s.table_.empty() || s.num_computed_ != 0 || s.num_scheduled_ != 0)
            broken(id + ": waiting but holds KV");
          if (s.in_flight_ != 0) broken(id + ": waiting but in flight");
          break;
        case SeqStatus::kRunning:
          ++live;
          if (retired) broken(id + ": live in a retired group");
          if (std::find(running_.begin(), running_.end(), &s) == running_.end())
            broken(id + ": running but not listed");
          if (s.num_scheduled_ > s.num_tokens()) broken(id + ": scheduled past its tokens");
          if (s.table_.num_blocks() * kv_.block_size() < s.num_scheduled_)
            broken(id + ": scheduled tokens without slots");
          if (s.num_tokens() > config_.max_model_len) broken(id + ": longer than max_model_len");
          break;
      }
    }
  };
  for (const auto& [id, g] : groups_) {
    if (g->finished()) broken(id + ": finished group still live");
    check_group(*g, false);
  }
  for (const auto& g : retired_) check_group(*g, true);
  if (named != flying.size()) broken("a plan in flight names a sequence of no request");
  if (live != waiting_.size() + running_.size()) broken("queued sequences of no live request");
  if (int(running_.size()) > config_.max_num_seqs) broken("more than max_num_seqs running");
  if (!std::is_sorted(running_.begin(), running_.end(), Order{}))
    broken("running list out of order");
  if (reserved != reserved_total_) broken("reservation total out of sync");
  if (reserve() && kv_.pool().num_free_blocks() < reserved_total_)
    broken("reservations exceed free blocks");
  kv_.check_invariants(tables);
}

}  // namespace herd
