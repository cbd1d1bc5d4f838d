#include "engine/sched/scheduler.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "engine/common/error.h"
#include "tests/sched/fake_engine.h"

namespace herd {
namespace {

using testing::FakeEngine;
using testing::make_prompt;

SchedulerConfig small_config(AdmissionPolicy policy = AdmissionPolicy::kOptimistic) {
  SchedulerConfig c;
  c.num_blocks = 64;
  c.block_size = 16;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 256;
  c.max_model_len = 512;
  c.policy = policy;
  return c;
}

NewRequest req(const std::string& id, int prompt_len, int max_tokens, int n = 1, int first = 1) {
  NewRequest r;
  r.request_id = id;
  r.prompt = make_prompt(prompt_len, first);
  r.max_tokens = max_tokens;
  r.n = n;
  return r;
}

// "r<i>" (built without operator+, which trips a GCC 12 -Wrestrict false positive).
std::string rid(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "r%d", i);
  return buf;
}

// The plan entry of request `id` sample `index`, or nullptr.
const ScheduledSeq* entry(const StepPlan& p, const std::string& id, int index = 0) {
  for (const auto& e : p.entries)
    if (e.seq->request_id() == id && e.seq->index() == index) return &e;
  return nullptr;
}

TEST(Scheduler, ChunkedPrefillSplitsALongPromptAndSamplesOnlyAtItsEnd) {
  auto c = small_config();
  c.max_num_batched_tokens = 32;
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  s.add_request(req("a", 100, 3));
  const int starts[] = {0, 32, 64, 96}, sizes[] = {32, 32, 32, 4};
  for (int i = 0; i < 4; ++i) {
    const StepPlan p = eng.step();
    ASSERT_EQ(p.entries.size(), 1u);
    EXPECT_EQ(p.entries[0].start, starts[i]);
    EXPECT_EQ(p.entries[0].num_tokens, sizes[i]);
    EXPECT_EQ(p.entries[0].sample, i == 3);
    EXPECT_EQ(p.entries[0].position(0), starts[i]);
    s.check_invariants();
  }
  const StepPlan decode = eng.step();
  ASSERT_EQ(decode.entries.size(), 1u);
  EXPECT_EQ(decode.entries[0].num_tokens, 1);
  EXPECT_EQ(decode.entries[0].start, 100);
  EXPECT_TRUE(decode.entries[0].sample);
}

TEST(Scheduler, WithoutChunkingAPromptRunsWholeOrWaits) {
  auto c = small_config();
  c.enable_chunked_prefill = false;
  c.max_model_len = 128;
  c.max_num_batched_tokens = 128;
  Scheduler s(c);
  FakeEngine eng(s);
  s.add_request(req("a", 100, 5));
  s.add_request(req("b", 50, 5, 1, 1000));  // no prefix in common with a
  StepPlan p = eng.step();
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].num_tokens, 100);
  p = eng.step();
  ASSERT_NE(entry(p, "b"), nullptr);
  EXPECT_EQ(entry(p, "b")->num_tokens, 50);
  EXPECT_EQ(p.entries[0].seq->request_id(), "a");  // the decode first
}

TEST(Scheduler, DecodesComeBeforePrefillsUnderTheTokenBudget) {
  auto c = small_config();
  c.max_num_batched_tokens = 16;
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  s.add_request(req("a", 10, 20));
  eng.step();  // prefill a
  s.add_request(req("b", 200, 5));
  const StepPlan p = eng.step();
  ASSERT_EQ(p.entries.size(), 2u);
  EXPECT_EQ(p.entries[0].seq->request_id(), "a");
  EXPECT_EQ(p.entries[0].num_tokens, 1);
  EXPECT_EQ(p.entries[1].num_tokens, 15);
  EXPECT_EQ(p.num_batched_tokens, 16);
}

TEST(Scheduler, MaxNumSeqsBoundsTheRunningSet) {
  auto c = small_config();
  c.max_num_seqs = 2;
  Scheduler s(c);
  FakeEngine eng(s);
  for (int i = 0; i < 3; ++i) s.add_request(req(rid(i), 5, 4));
  eng.step();
  EXPECT_EQ(s.stats().running, 2);
  EXPECT_EQ(s.stats().waiting, 1);
  eng.run_to_completion();
  EXPECT_FALSE(s.has_unfinished());
}

TEST(Scheduler, LowerPriorityValueIsAdmittedFirstThenArrivalOrder) {
  auto c = small_config();
  c.max_num_seqs = 1;
  Scheduler s(c);
  FakeEngine eng(s);
  auto add = [&](const std::string& id, int prio) {
    NewRequest r = req(id, 4, 1);
    r.priority = prio;
    s.add_request(std::move(r));
  };
  add("late-low", 5);
  add("first-high", 1);
  add("second-high", 1);
  std::vector<std::string> order;
  while (s.has_unfinished()) {
    const StepPlan p = eng.step();
    for (const auto& e : p.entries) order.push_back(e.seq->request_id());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"first-high", "second-high", "late-low"}));
}

// A pool of 12 blocks of 4 tokens; requests of prompt 10 + 14 outputs need 6 blocks each.
SchedulerConfig tight_config(AdmissionPolicy policy) {
  SchedulerConfig c;
  c.num_blocks = 12;
  c.block_size = 4;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 64;
  c.max_model_len = 48;
  c.enable_prefix_caching = false;
  c.policy = policy;
  return c;
}

TEST(Scheduler, ReserveAdmitsOnlyWhatFitsAndNeverPreempts) {
  Scheduler s(tight_config(AdmissionPolicy::kReserve));
  FakeEngine eng(s);
  eng.stop_tokens = false;
  std::vector<std::shared_ptr<SequenceGroup>> gs;
  for (int i = 0; i < 4; ++i) gs.push_back(s.add_request(req(rid(i), 10, 14, 1, 100 * i)));
  int max_running = 0;
  while (s.has_unfinished()) {
    const StepPlan p = eng.step();
    EXPECT_TRUE(p.preempted.empty());
    s.check_invariants();
    max_running = std::max(max_running, s.stats().running);
  }
  EXPECT_EQ(max_running, 2);
  EXPECT_EQ(s.stats().preemptions, 0);
  for (const auto& g : gs) {
    EXPECT_EQ(g->seq(0).finish_reason(), FinishReason::kLength);
    EXPECT_EQ(g->seq(0).output().size(), 14u);
  }
}

TEST(Scheduler, OptimisticPreemptsTheNewestWhichLaterCompletesIdentically) {
  Scheduler s(tight_config(AdmissionPolicy::kOptimistic));
  FakeEngine eng(s);
  eng.stop_tokens = false;
  std::vector<std::shared_ptr<SequenceGroup>> gs;
  for (int i = 0; i < 4; ++i) gs.push_back(s.add_request(req(rid(i), 10, 14, 1, 100 * i)));
  eng.step();
  EXPECT_EQ(s.stats().running, 4);  // admitted on prompt blocks alone
  std::vector<std::string> victims;
  while (s.has_unfinished()) {
    const StepPlan p = eng.step();
    for (const Sequence* v : p.preempted) {
      victims.push_back(v->request_id());
      EXPECT_EQ(v->status(), SeqStatus::kPreempted);
      EXPECT_EQ(v->num_computed(), 0);
      EXPECT_TRUE(v->block_table().empty());
    }
    s.check_invariants();
  }
  ASSERT_FALSE(victims.empty());
  EXPECT_EQ(victims.front(), "r3");
  EXPECT_GT(s.stats().preemptions, 0);
  EXPECT_GT(gs[3]->seq(0).num_preemptions(), 0);
  EXPECT_EQ(gs[0]->seq(0).num_preemptions(), 0);  // the oldest always makes progress
  for (const auto& g : gs) {
    const Sequence& q = g->seq(0);
    EXPECT_EQ(q.finish_reason(), FinishReason::kLength);
    ASSERT_EQ(q.output().size(), 14u);
    for (int k = 0; k < 14; ++k)
      EXPECT_EQ(q.output()[k], testing::fake_token(g->request_id(), 0, k));
  }
}

TEST(Scheduler, SamplesShareEveryFullPromptBlockWithoutThePrefixCache) {
  auto c = small_config();
  c.enable_prefix_caching = false;
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  auto g = s.add_request(req("rs", 40, 4, 4));  // 2 full blocks shared, 8-token tail private
  EXPECT_EQ(g->num_shared_blocks(), 2);
  StepPlan p = eng.step();
  ASSERT_EQ(p.entries.size(), 1u);  // sample 0 prefills the prompt alone
  EXPECT_EQ(p.entries[0].num_tokens, 40);
  p = eng.step();
  for (int i = 1; i < 4; ++i) {
    const ScheduledSeq* e = entry(p, "rs", i);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->start, 32);  // only the tail is computed
    EXPECT_EQ(e->num_tokens, 8);
    EXPECT_TRUE(e->sample);
    EXPECT_EQ(g->seq(i).num_cached_prompt_tokens(), 32);
  }
  const auto& t0 = g->seq(0).block_table().blocks;
  EXPECT_EQ(s.kv().pool().ref_count(t0[0]), 4);
  EXPECT_EQ(s.kv().pool().ref_count(t0[1]), 4);
  EXPECT_EQ(s.kv().pool().num_owned_blocks(), 2 + 4);  // unshared would be 12
  s.check_invariants();
  eng.run_to_completion();
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(g->seq(i).output().size(), 4u);
    for (int k = 0; k < 4; ++k) EXPECT_EQ(g->seq(i).output()[k], testing::fake_token("rs", i, k));
  }
  EXPECT_EQ(s.kv().pool().num_free_blocks(), c.num_blocks);
}

TEST(Scheduler, ReserveCountsSharedPromptBlocksOnce) {
  SchedulerConfig c;
  c.num_blocks = 8;
  c.block_size = 4;
  c.max_model_len = 32;
  c.max_num_batched_tokens = 64;
  c.enable_prefix_caching = false;
  c.policy = AdmissionPolicy::kReserve;
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  // prompt 13 + 3 outputs = 4 blocks; 3 shared; 3 samples: 4 + 1 + 1 = 6 blocks <= 8.
  auto g = s.add_request(req("rs", 13, 3, 3));
  // Unshared it would need 12 blocks and be refused.
  EXPECT_THROW(s.add_request(req("big", 13, 3, 3 + 5)), InvalidArgument);
  eng.run_to_completion();
  EXPECT_EQ(s.stats().preemptions, 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(g->seq(i).output().size(), 3u);
}

TEST(Scheduler, PrefixCacheHitsSkipComputedTokens) {
  auto c = small_config();
  Scheduler s(c);
  FakeEngine eng(s);
  auto shared_prefix = [](int unique) {
    auto p = std::make_shared<std::vector<int32_t>>();
    for (int i = 0; i < 32; ++i) p->push_back(500 + i);
    for (int i = 0; i < 8; ++i) p->push_back(unique + i);
    return p;
  };
  NewRequest a;
  a.request_id = "a";
  a.prompt = shared_prefix(1);
  a.max_tokens = 2;
  s.add_request(a);
  eng.run_to_completion();
  NewRequest b = a;
  b.request_id = "b";
  b.prompt = shared_prefix(100);
  auto gb = s.add_request(b);
  const StepPlan p = eng.step();
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].start, 32);
  EXPECT_EQ(p.entries[0].num_tokens, 8);
  EXPECT_EQ(gb->seq(0).num_cached_prompt_tokens(), 32);
  EXPECT_EQ(s.stats().kv.prefix_queries_tokens, 80);
  EXPECT_EQ(s.stats().kv.prefix_hits_tokens, 32);
  eng.run_to_completion();
}

TEST(Scheduler, IdenticalPromptStillComputesItsLastBlock) {
  Scheduler s(small_config());
  FakeEngine eng(s);
  s.add_request(req("a", 32, 1));
  eng.run_to_completion();
  s.add_request(req("b", 32, 1));
  const StepPlan p = eng.step();
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].start, 16);
  EXPECT_TRUE(p.entries[0].sample);
}

TEST(Scheduler, NoHitsWithCachingOff) {
  auto c = small_config();
  c.enable_prefix_caching = false;
  Scheduler s(c);
  FakeEngine eng(s);
  s.add_request(req("a", 40, 1));
  eng.run_to_completion();
  s.add_request(req("b", 40, 1));
  EXPECT_EQ(eng.step().entries[0].start, 0);
  EXPECT_EQ(s.stats().kv.prefix_queries_tokens, 0);
}

TEST(Scheduler, DifferentCacheSaltsDoNotShare) {
  Scheduler s(small_config());
  FakeEngine eng(s);
  NewRequest a = req("a", 40, 1);
  a.cache_salt = "tenant-1";
  s.add_request(a);
  eng.run_to_completion();
  NewRequest b = req("b", 40, 1);
  b.cache_salt = "tenant-2";
  s.add_request(b);
  EXPECT_EQ(eng.step().entries[0].start, 0);
}

void expect_baseline(const Scheduler& s) {
  s.check_invariants();
  EXPECT_FALSE(s.has_unfinished());
  EXPECT_EQ(s.kv().pool().num_owned_blocks(), 0);
  EXPECT_EQ(s.stats().running + s.stats().waiting, 0);
}

TEST(Scheduler, AbortWhileWaiting) {
  Scheduler s(small_config());
  auto g = s.add_request(req("a", 10, 5, 2));
  EXPECT_TRUE(s.abort("a"));
  EXPECT_FALSE(s.abort("a"));
  EXPECT_EQ(g->seq(1).finish_reason(), FinishReason::kAbort);
  expect_baseline(s);
  EXPECT_TRUE(s.schedule().empty());
}

TEST(Scheduler, AbortMidChunkedPrefill) {
  auto c = small_config();
  c.max_num_batched_tokens = 16;
  Scheduler s(c);
  FakeEngine eng(s);
  s.add_request(req("a", 100, 5, 3));
  eng.step();
  eng.step();
  EXPECT_GT(s.kv().pool().num_owned_blocks(), 0);
  EXPECT_TRUE(s.abort("a"));
  expect_baseline(s);
}

TEST(Scheduler, AbortWhileDecodingWithSharedPrompt) {
  Scheduler s(small_config());
  FakeEngine eng(s);
  eng.stop_tokens = false;
  auto g = s.add_request(req("a", 40, 50, 3));
  s.add_request(req("b", 20, 3));
  for (int i = 0; i < 4; ++i) eng.step();
  EXPECT_EQ(g->seq(2).status(), SeqStatus::kRunning);
  EXPECT_TRUE(s.abort("a"));
  s.check_invariants();
  eng.run_to_completion();
  expect_baseline(s);
}

TEST(Scheduler, AbortWhilePreempted) {
  Scheduler s(tight_config(AdmissionPolicy::kOptimistic));
  FakeEngine eng(s);
  eng.stop_tokens = false;
  for (int i = 0; i < 4; ++i) s.add_request(req(rid(i), 10, 14, 1, 100 * i));
  const Sequence* victim = nullptr;
  while (!victim && s.has_unfinished()) {
    const StepPlan p = eng.step();
    if (!p.preempted.empty()) victim = p.preempted[0];
  }
  ASSERT_NE(victim, nullptr);
  EXPECT_TRUE(s.abort(victim->request_id()));
  s.check_invariants();
  eng.run_to_completion();
  expect_baseline(s);
}

TEST(Scheduler, AbortBetweenScheduleAndStepDone) {
  Scheduler s(small_config());
  s.add_request(req("a", 10, 5));
  s.add_request(req("b", 10, 5));
  const StepPlan p = s.schedule();
  ASSERT_EQ(p.entries.size(), 2u);
  EXPECT_TRUE(s.abort("a"));
  const std::vector<int32_t> sampled{7, 8};
  s.on_step_done(p, sampled);  // a's entry is skipped
  s.check_invariants();
  EXPECT_EQ(s.find("b")->seq(0).output(), (std::vector<int32_t>{8}));
  EXPECT_EQ(s.find("a"), nullptr);
}

TEST(Scheduler, MaxModelLenFinishesWithLength) {
  auto c = small_config();
  c.max_model_len = 20;
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  auto g = s.add_request(req("a", 15, 100));
  EXPECT_EQ(g->max_tokens(), 5);
  eng.run_to_completion();
  EXPECT_EQ(g->seq(0).finish_reason(), FinishReason::kLength);
  EXPECT_EQ(g->seq(0).num_tokens(), 20);
}

TEST(Scheduler, EngineStopFinishesAndFreesBlocks) {
  Scheduler s(small_config());
  s.add_request(req("a", 10, 100));
  const StepPlan p = s.schedule();
  const std::vector<int32_t> tok{42};
  EXPECT_TRUE(s.on_step_done(p, tok).empty());
  Sequence* q = p.entries[0].seq;
  s.finish(q, FinishReason::kStop);
  EXPECT_EQ(q->finish_reason(), FinishReason::kStop);  // still valid until next schedule()
  s.finish(q, FinishReason::kAbort);                   // no-op once finished
  EXPECT_EQ(q->finish_reason(), FinishReason::kStop);
  expect_baseline(s);
}

TEST(Scheduler, RejectsBadRequestsAndConfigs) {
  Scheduler s(small_config());
  s.add_request(req("a", 10, 5));
  EXPECT_THROW(s.add_request(req("a", 10, 5)), InvalidArgument);
  EXPECT_THROW(s.add_request(req("b", 0, 5)), InvalidArgument);
  EXPECT_THROW(s.add_request(req("b", 512, 5)), InvalidArgument);
  EXPECT_THROW(s.add_request(req("b", 10, 0)), InvalidArgument);
  EXPECT_THROW(s.add_request(req("b", 10, 5, 9)), InvalidArgument);
  try {
    s.add_request(req("b", 10, 5, 0));
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.param(), "n");
  }
  auto c = small_config();
  c.max_model_len = c.num_blocks * c.block_size + 1;
  EXPECT_THROW(Scheduler{c}, InvalidArgument);
  c = small_config();
  c.enable_chunked_prefill = false;
  EXPECT_THROW(Scheduler{c}, InvalidArgument);
  c = small_config();
  c.long_prefill_token_threshold = -1;
  EXPECT_THROW(Scheduler{c}, InvalidArgument);
  c = small_config(AdmissionPolicy::kReserve);
  c.max_model_len = 512;
  c.num_blocks = 40;
  Scheduler r(c);
  EXPECT_THROW(r.add_request(req("x", 10, 600, 2)), InvalidArgument);  // 2 x 32 blocks > 40
}

TEST(Scheduler, WrongNumberOfSampledTokensIsRejected) {
  Scheduler s(small_config());
  s.add_request(req("a", 10, 5));
  const StepPlan p = s.schedule();
  EXPECT_THROW(s.on_step_done(p, {}), std::invalid_argument);
}

TEST(Scheduler, StatsReportQueuesAndUsage) {
  auto c = small_config();
  c.max_num_seqs = 1;
  Scheduler s(c);
  FakeEngine eng(s);
  s.add_request(req("a", 20, 5));
  s.add_request(req("b", 20, 5));
  eng.step();
  const SchedulerStats st = s.stats();
  EXPECT_EQ(st.running, 1);
  EXPECT_EQ(st.waiting, 1);
  EXPECT_DOUBLE_EQ(st.kv.usage, 2.0 / 64);
  EXPECT_EQ(st.kv.num_blocks, 64);
}

}  // namespace
}  // namespace herd
