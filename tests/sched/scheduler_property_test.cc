// Randomized property test: thousands of random request streams (shared prefixes, n > 1,
// random lengths, priorities and aborts) over tiny pools, under both admission policies, with
// prefix caching and chunked prefill on and off. A fake model checks every step's KV reads
// (tests/sched/fake_engine.h). After every step the scheduler's invariants must hold and the
// step must make progress, every running decode must get its token (unless decodes alone fill
// the token budget, or it was preempted) and no prefill chunk may pass
// long_prefill_token_threshold; at the end every request is finished or aborted, outputs are
// the deterministic tokens, and the pool is back to all blocks free or cached.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/common/error.h"
#include "engine/sched/scheduler.h"
#include "tests/sched/fake_engine.h"

namespace herd {
namespace {

using testing::fake_token;
using testing::FakeEngine;
using testing::is_stop_token;

struct Tracked {
  std::shared_ptr<SequenceGroup> group;
  bool aborted = false;
};

struct StreamResult {
  int64_t preemptions = 0;
  int64_t prefix_hits = 0;
  int requests = 0;
  int rejected = 0;
  int forked_samples = 0;  // samples > 0 that started past shared prompt blocks
};

std::string request_name(int stream, int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "s%d-r%d", stream, i);
  return buf;
}

StreamResult run_stream(int stream, AdmissionPolicy policy, bool caching, bool chunked) {
  std::mt19937 rng(uint32_t(stream) * 7919u + 17u);
  auto uni = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  SchedulerConfig c;
  c.block_size = std::vector<int>{1, 2, 4, 8}[uni(0, 3)];
  c.num_blocks = uni(3, 40);
  c.max_model_len = std::max(2, std::min(c.num_blocks * c.block_size, uni(8, 64)));
  c.max_num_seqs = uni(1, 8);
  c.enable_prefix_caching = caching;
  c.enable_chunked_prefill = chunked;
  c.max_num_batched_tokens = chunked ? uni(1, 48) : c.max_model_len + uni(0, 16);
  c.policy = policy;
  c.long_prefill_token_threshold = uni(0, 1) == 0 ? 0 : uni(1, 16);
  Scheduler s(c);
  FakeEngine eng(s);

  // A few shared "system prompts" over a small alphabet, so prefixes repeat.
  std::vector<std::vector<int32_t>> prefixes(3);
  for (auto& p : prefixes) {
    p.resize(uni(0, 20));
    for (auto& t : p) t = uni(1, 6);
  }
  const int num_requests = uni(3, 24);
  std::multimap<int, int> arrivals;  // step -> request index
  for (int i = 0; i < num_requests; ++i) arrivals.emplace(uni(0, 30), i);

  std::map<std::string, Tracked> tracked;
  StreamResult res;
  const int max_steps = 5000;
  int step = 0;
  for (; step < max_steps; ++step) {
    for (auto [it, end] = arrivals.equal_range(step); it != end; ++it) {
      NewRequest r;
      r.request_id = request_name(stream, it->second);
      auto prompt = std::make_shared<std::vector<int32_t>>(prefixes[uni(0, 2)]);
      for (int k = uni(1, 12); k > 0; --k) prompt->push_back(uni(1, 6));
      if (int(prompt->size()) >= c.max_model_len) prompt->resize(c.max_model_len - 1);
      r.prompt = prompt;
      r.n = uni(1, std::min(3, c.max_num_seqs));
      r.max_tokens = uni(1, 20);
      r.priority = uni(0, 2);
      r.cache_salt = uni(0, 3) == 0 ? "tenant" : "";
      ++res.requests;
      try {
        tracked[r.request_id].group = s.add_request(r);
      } catch (const InvalidArgument& e) {
        // Only the reserve policy may refuse a well-formed request: it can never fit.
        EXPECT_EQ(policy, AdmissionPolicy::kReserve) << e.what();
        tracked.erase(r.request_id);
        ++res.rejected;
      }
    }
    if (uni(0, 99) < 3 && !tracked.empty()) {
      auto it = tracked.begin();
      std::advance(it, uni(0, int(tracked.size()) - 1));
      if (!it->second.group->finished()) {
        EXPECT_TRUE(s.abort(it->first));
        it->second.aborted = true;
      }
    }
    if (!s.has_unfinished()) {
      if (arrivals.upper_bound(step) == arrivals.end()) break;
      continue;
    }
    // Running decodes (one token left to run) before the step: each must be scheduled.
    std::vector<const Sequence*> decodes;
    for (const auto& [id, t] : tracked)
      for (int i = 0; i < t.group->n(); ++i) {
        const Sequence& q = t.group->seq(i);
        if (q.status() == SeqStatus::kRunning && q.num_tokens() - q.num_computed() == 1)
          decodes.push_back(&q);
      }
    const StepPlan p = eng.step();
    EXPECT_TRUE(!p.entries.empty() || !p.preempted.empty()) << "stalled at step " << step;
    if (int(decodes.size()) <= c.max_num_batched_tokens) {
      for (const Sequence* q : decodes) {
        bool ran = false;
        for (const auto& e : p.entries) ran |= e.seq == q;
        for (const Sequence* v : p.preempted) ran |= v == q;
        EXPECT_TRUE(ran) << "stream " << stream << " step " << step << ": running decode "
                         << q->request_id() << "/" << q->index() << " got no token";
      }
    }
    if (chunked && c.long_prefill_token_threshold > 0) {
      for (const auto& e : p.entries)
        EXPECT_LE(e.num_tokens, c.long_prefill_token_threshold) << "stream " << stream;
    }
    if (policy == AdmissionPolicy::kReserve) {
      EXPECT_TRUE(p.preempted.empty());
    }
    try {
      s.check_invariants();
    } catch (const std::logic_error& e) {
      ADD_FAILURE() << "stream " << stream << " step " << step << ": " << e.what();
      return res;
    }
    if (::testing::Test::HasFailure()) return res;
  }
  EXPECT_LT(step, max_steps) << "stream " << stream << " did not drain";
  EXPECT_FALSE(s.has_unfinished());

  for (const auto& [id, t] : tracked) {
    const SequenceGroup& g = *t.group;
    for (int i = 0; i < g.n(); ++i) {
      const Sequence& q = g.seq(i);
      EXPECT_TRUE(q.finished()) << id;
      const auto& out = q.output();
      if (i > 0 && q.num_cached_prompt_tokens() > 0) ++res.forked_samples;
      for (size_t k = 0; k < out.size(); ++k)
        EXPECT_EQ(out[k], fake_token(id, i, int(k))) << id << " token " << k;
      for (size_t k = 0; k + 1 < out.size(); ++k) EXPECT_FALSE(is_stop_token(out[k])) << id;
      switch (q.finish_reason()) {
        case FinishReason::kAbort:
          EXPECT_TRUE(t.aborted) << id;
          break;
        case FinishReason::kStop:
          EXPECT_TRUE(is_stop_token(out.back())) << id;
          break;
        case FinishReason::kLength:
          EXPECT_TRUE(int(out.size()) == g.max_tokens() || q.num_tokens() == c.max_model_len) << id;
          break;
        default:
          ADD_FAILURE() << id << " finished without a reason";
      }
    }
  }
  EXPECT_EQ(s.kv().pool().num_owned_blocks(), 0);
  EXPECT_EQ(s.kv().pool().num_free_blocks(), c.num_blocks);
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.running + st.waiting, 0);
  res.preemptions = st.preemptions;
  res.prefix_hits = st.kv.prefix_hits_tokens;
  return res;
}

class SchedulerProperty : public ::testing::TestWithParam<std::tuple<AdmissionPolicy, bool, bool>> {
};

TEST_P(SchedulerProperty, RandomStreamsKeepInvariantsAndDrain) {
  const auto [policy, caching, chunked] = GetParam();
  StreamResult total;
  const int streams = 1500;  // x 8 modes
  for (int stream = 0; stream < streams; ++stream) {
    const StreamResult r = run_stream(stream, policy, caching, chunked);
    if (HasFailure()) {
      ADD_FAILURE() << "first failing stream: " << stream;
      return;
    }
    total.preemptions += r.preemptions;
    total.prefix_hits += r.prefix_hits;
    total.requests += r.requests;
    total.rejected += r.rejected;
    total.forked_samples += r.forked_samples;
  }
  // The streams must actually exercise what they claim to.
  if (policy == AdmissionPolicy::kOptimistic) {
    EXPECT_GT(total.preemptions, 0);
  }
  if (caching) {
    EXPECT_GT(total.prefix_hits, 0);
  }
  EXPECT_GT(total.forked_samples, 0);
  EXPECT_LT(total.rejected, total.requests / 2);
}

INSTANTIATE_TEST_SUITE_P(AllModes, SchedulerProperty,
                         ::testing::Combine(::testing::Values(AdmissionPolicy::kReserve,
                                                              AdmissionPolicy::kOptimistic),
                                            ::testing::Bool(), ::testing::Bool()));

}  // namespace
}  // namespace herd
