// A fake executor with up to `depth` plans in flight, for the scheduler's in-flight contract.
//
// schedule() makes a plan and queues it; land() executes the oldest plan and lands it. As in
// FakeEngine the simulated KV of position p is a hash of the sequence's tokens [0, p]:
// executing a plan writes the KV of its new tokens, then checks that every position
// [0, start + n) of every entry reads back its own value through the entry's copied block
// table — so a plan that runs before the KV of an earlier chunk is written, or a block handed
// to another sequence while a plan in flight still uses it, fails loudly. At schedule() it
// also checks that the slots the new plan writes are not used by any plan in flight, and that
// no sequence waiting for a sampled token is scheduled again.
//
// The sampled token is a function of the sequence's token history (a hash of its tokens
// [0, start + n)), so outputs must not depend on scheduling order, depth or micro-batching; a
// token divisible by kStopModulus is a stop token (the engine's stop checker then finishes
// the sequence after the landing).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <set>
#include <vector>

#include "engine/sched/scheduler.h"
#include "tests/sched/fake_engine.h"

namespace herd::testing {

// The token sampled after tokens [0, len) of `s`.
inline int32_t history_token(const Sequence& s, int len) {
  uint64_t h = 0x5EEDull;
  for (int p = 0; p < len; ++p) h = mix(h, uint64_t(uint32_t(s.token(p))));
  return int32_t(h % 1000) + 1;
}

class PipelineEngine {
 public:
  PipelineEngine(Scheduler& s, int depth)
      : sched_(s), depth_(depth), kv_(size_t(s.config().num_blocks) * s.config().block_size, 0) {}

  bool stop_tokens = true;

  int depth() const { return depth_; }
  size_t in_flight() const { return flight_.size(); }
  bool can_schedule() const { return int(flight_.size()) < depth_; }

  // Makes a plan and, when not empty, queues it. Returns a copy of it.
  StepPlan schedule() {
    StepPlan plan = sched_.schedule();
    if (plan.empty()) return plan;
    const int bs = sched_.config().block_size;
    Flight f;
    f.plan = plan;
    std::set<size_t> used;  // slots read or written by plans in flight
    for (const Flight& g : flight_)
      for (const ScheduledSeq& e : g.plan.entries)
        for (int p = 0; p < e.start + e.num_tokens; ++p) used.insert(slot(e, p, bs));
    for (const ScheduledSeq& e : plan.entries) {
      const Sequence& s = *e.seq;
      EXPECT_EQ(int(e.token_ids.size()), e.num_tokens);
      EXPECT_GE(int(e.block_table.size()) * bs, e.start + e.num_tokens);
      const ScheduledSeq* last = nullptr;  // its latest entry in flight
      for (const Flight& g : flight_)
        for (const ScheduledSeq& o : g.plan.entries)
          if (o.seq == e.seq) last = &o;
      if (last) {
        EXPECT_FALSE(last->sample) << s.request_id() << "/" << s.index()
                                   << " scheduled again before its sampled token landed";
        EXPECT_EQ(last->start + last->num_tokens, e.start) << "chunks in flight do not continue";
      }
      std::vector<uint64_t> expect;
      uint64_t h = 0;
      for (int p = 0; p < e.start + e.num_tokens; ++p) {
        h = mix(h, uint64_t(uint32_t(s.token(p))));
        expect.push_back(h);
      }
      for (int j = 0; j < e.num_tokens; ++j) {
        EXPECT_EQ(e.token_ids[j], s.token(e.start + j));
        EXPECT_EQ(used.count(slot(e, e.start + j, bs)), 0u)
            << s.request_id() << "/" << s.index() << " writes a slot a plan in flight uses";
      }
      f.expect.push_back(std::move(expect));
      f.sampled.push_back(e.sample ? history_token(s, e.start + e.num_tokens) : 0);
    }
    flight_.push_back(std::move(f));
    return plan;
  }

  // Executes and lands the oldest plan in flight, then applies the stop checker. Returns the
  // landed plan (its Sequence pointers stay valid until the next schedule()).
  StepPlan land() {
    Flight f = std::move(flight_.front());
    flight_.pop_front();
    const int bs = sched_.config().block_size;
    const StepPlan& plan = f.plan;
    for (size_t i = 0; i < plan.entries.size(); ++i) {
      const ScheduledSeq& e = plan.entries[i];
      for (int j = 0; j < e.num_tokens; ++j)
        kv_[slot(e, e.start + j, bs)] = f.expect[i][size_t(e.start + j)];
    }
    std::vector<int32_t> sampled;
    for (size_t i = 0; i < plan.entries.size(); ++i) {
      const ScheduledSeq& e = plan.entries[i];
      for (int p = 0; p < e.start + e.num_tokens; ++p) {
        if (kv_[slot(e, p, bs)] != f.expect[i][size_t(p)]) {
          ADD_FAILURE() << e.seq->request_id() << "/" << e.seq->index()
                        << " reads wrong KV at position " << p;
          break;
        }
      }
      if (e.sample) sampled.push_back(f.sampled[i]);
    }
    const auto length_done = sched_.on_step_done(plan, sampled);
    for (Sequence* s : length_done) EXPECT_EQ(s->finish_reason(), FinishReason::kLength);
    if (stop_tokens) {
      for (const ScheduledSeq& e : plan.entries) {
        Sequence* s = e.seq;
        if (e.sample && !s->finished() && is_stop_token(s->output().back()))
          sched_.finish(s, FinishReason::kStop);
      }
    }
    return std::move(f.plan);
  }

  // Keeps `depth` plans in flight until everything is done, checking invariants after each
  // call. Returns false if it stalled or ran past max_calls.
  bool run_to_completion(int max_calls = 100000) {
    for (int n = 0; n < max_calls; ++n) {
      if (!sched_.has_unfinished() && flight_.empty()) return true;
      bool made = false;
      if (can_schedule()) {
        const StepPlan p = schedule();
        made = !p.empty() || !p.preempted.empty();
      }
      sched_.check_invariants();
      if (!made) {
        if (flight_.empty()) return false;
        land();
        sched_.check_invariants();
      }
    }
    return false;
  }

 private:
  struct Flight {
    StepPlan plan;
    std::vector<std::vector<uint64_t>> expect;  // per entry: KV of positions [0, start + n)
    std::vector<int32_t> sampled;               // per entry (0 when not sampling)
  };
  static size_t slot(const ScheduledSeq& e, int p, int bs) {
    return size_t(e.block_table[size_t(p / bs)]) * bs + p % bs;
  }
  Scheduler& sched_;
  int depth_;
  std::vector<uint64_t> kv_;
  std::deque<Flight> flight_;
};

}  // namespace herd::testing
