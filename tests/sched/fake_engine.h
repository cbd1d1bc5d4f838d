// A fake model for scheduler tests: runs StepPlans against a simulated KV cache and emits
// deterministic tokens.
//
// The simulated KV of position p of a sequence is a hash of its tokens [0, p] (as a real
// model's K/V depend on the whole prefix). Each step first writes the KV of every scheduled
// token into its slot, then checks that every position [0, start + n) of every scheduled
// sequence reads back its own expected value through its block table — so a prefix-cache hit,
// a shared prompt block or a recompute that points at the wrong KV fails loudly.
//
// The token sampled at output position k of sample i of request r depends only on (r, i, k),
// so outputs must not change with batching, preemption or sharing; a token divisible by
// kStopModulus is a stop token (the engine's stop checker then finishes the sequence).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/sched/scheduler.h"

namespace herd::testing {

inline constexpr int32_t kStopModulus = 17;

inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

inline int32_t fake_token(const std::string& request_id, int index, int out_pos) {
  const uint64_t h =
      mix(mix(std::hash<std::string>{}(request_id), uint64_t(index)), uint64_t(out_pos));
  return int32_t(h % 1000) + 1;
}

inline bool is_stop_token(int32_t t) { return t % kStopModulus == 0; }

class FakeEngine {
 public:
  explicit FakeEngine(Scheduler& s)
      : sched_(s), kv_(size_t(s.config().num_blocks) * s.config().block_size, 0) {}

  bool stop_tokens = true;  // apply the stop checker

  // One engine step. Returns the plan it ran (its Sequence pointers stay valid until the next
  // step).
  StepPlan step() {
    StepPlan plan = sched_.schedule();
    const int bs = sched_.config().block_size;
    std::vector<std::vector<uint64_t>> expect(plan.entries.size());
    for (size_t i = 0; i < plan.entries.size(); ++i) {
      const ScheduledSeq& e = plan.entries[i];
      const Sequence& s = *e.seq;
      EXPECT_EQ(int(e.token_ids.size()), e.num_tokens);
      EXPECT_GE(int(e.block_table.size()) * bs, e.start + e.num_tokens);
      uint64_t h = 0;
      for (int p = 0; p < e.start + e.num_tokens; ++p) {
        h = mix(h, uint64_t(uint32_t(s.token(p))));
        expect[i].push_back(h);
      }
      for (int j = 0; j < e.num_tokens; ++j) {
        EXPECT_EQ(e.token_ids[j], s.token(e.start + j));
        const int p = e.start + j;
        kv_[slot(e, p, bs)] = expect[i][p];
      }
    }
    std::vector<int32_t> sampled;
    for (size_t i = 0; i < plan.entries.size(); ++i) {
      const ScheduledSeq& e = plan.entries[i];
      for (int p = 0; p < e.start + e.num_tokens; ++p) {
        if (kv_[slot(e, p, bs)] != expect[i][p]) {
          ADD_FAILURE() << e.seq->request_id() << "/" << e.seq->index()
                        << " reads wrong KV at position " << p;
          break;
        }
      }
      if (e.sample)
        sampled.push_back(
            fake_token(e.seq->request_id(), e.seq->index(), int(e.seq->output().size())));
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
    ++steps_;
    return plan;
  }

  // Steps until nothing is left (or max_steps), checking invariants after each step.
  int run_to_completion(int max_steps = 10000) {
    int n = 0;
    while (sched_.has_unfinished() && n < max_steps) {
      step();
      sched_.check_invariants();
      ++n;
    }
    return n;
  }

  int64_t steps() const { return steps_; }

 private:
  static size_t slot(const ScheduledSeq& e, int p, int bs) {
    return size_t(e.block_table[p / bs]) * bs + p % bs;
  }
  Scheduler& sched_;
  std::vector<uint64_t> kv_;
  int64_t steps_ = 0;
};

inline std::shared_ptr<const std::vector<int32_t>> make_prompt(int len, int32_t first = 1) {
  auto p = std::make_shared<std::vector<int32_t>>(len);
  for (int i = 0; i < len; ++i) (*p)[i] = first + i;
  return p;
}

}  // namespace herd::testing
