// Fair scheduling (issue 14 items 7, 8): running decodes get their token every step whatever
// prefills (a long prompt, or a more important one) compete for the budget; one sequence's
// prefill chunk is capped by long_prefill_token_threshold; n > 1 samples of a prompt found in
// the prefix cache all start in the same step; identical prompts arriving in one step each
// prefill (and a later one hits the cache).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/sched/scheduler.h"
#include "tests/sched/fake_engine.h"

namespace herd {
namespace {

using testing::FakeEngine;
using testing::make_prompt;

NewRequest req(const std::string& id, int prompt_len, int max_tokens, int n = 1, int first = 1,
               int priority = 0) {
  NewRequest r;
  r.request_id = id;
  r.prompt = make_prompt(prompt_len, first);
  r.max_tokens = max_tokens;
  r.n = n;
  r.priority = priority;
  return r;
}

const ScheduledSeq* entry(const StepPlan& p, const std::string& id, int index = 0) {
  for (const auto& e : p.entries)
    if (e.seq->request_id() == id && e.seq->index() == index) return &e;
  return nullptr;
}

SchedulerConfig long_config(int threshold) {
  SchedulerConfig c;
  c.block_size = 16;
  c.num_blocks = 1100;  // 17600 tokens
  c.max_model_len = 16384;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 2048;
  c.long_prefill_token_threshold = threshold;
  return c;
}

// Three streams decode while an 8k-token prompt of a more important request (priority -1, so
// it is ordered before them in the running list) prefills: every step gives each stream its
// token, and the prompt takes at most `threshold` tokens (or what the decodes leave).
void check_decodes_flow(int threshold) {
  const SchedulerConfig c = long_config(threshold);
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  const std::vector<std::string> streams = {"d0", "d1", "d2"};
  for (size_t i = 0; i < streams.size(); ++i)
    s.add_request(req(streams[i], 10, 500, 1, 1000 + 20 * int(i)));
  eng.step();  // their prompts
  s.add_request(req("long", 8192, 2, 1, 1, /*priority=*/-1));
  const int chunk = threshold > 0 ? threshold : c.max_num_batched_tokens - 3;
  int prefilled = 0, steps = 0;
  while (prefilled < 8192) {
    const StepPlan p = eng.step();
    ++steps;
    for (const std::string& id : streams) {
      const ScheduledSeq* e = entry(p, id);
      ASSERT_NE(e, nullptr) << id << " got no token in step " << steps;
      EXPECT_EQ(e->num_tokens, 1);
      EXPECT_TRUE(e->sample);
    }
    const ScheduledSeq* l = entry(p, "long");
    ASSERT_NE(l, nullptr) << "the long prompt made no progress in step " << steps;
    EXPECT_EQ(l->start, prefilled);
    EXPECT_EQ(l->num_tokens, std::min(chunk, 8192 - prefilled));
    EXPECT_LE(p.num_batched_tokens, c.max_num_batched_tokens);
    EXPECT_TRUE(p.preempted.empty());
    prefilled += l->num_tokens;
    s.check_invariants();
  }
  EXPECT_EQ(steps, (8192 + chunk - 1) / chunk);
  eng.run_to_completion();
  EXPECT_FALSE(s.has_unfinished());
}

TEST(SchedulerFairness, DecodesGetATokenEveryStepWhileAnImportant8kPromptPrefillsCapped) {
  check_decodes_flow(256);
}

TEST(SchedulerFairness, DecodesGetATokenEveryStepEvenWithoutThePrefillCap) {
  check_decodes_flow(0);
}

TEST(SchedulerFairness, TheCapSplitsAdmissionsSoAShortPromptIsNotBlockedByALongOne) {
  SchedulerConfig c = long_config(256);
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  s.add_request(req("long", 4000, 2));
  s.add_request(req("short", 100, 2, 1, 5000));
  const StepPlan p = eng.step();
  ASSERT_NE(entry(p, "long"), nullptr);
  ASSERT_NE(entry(p, "short"), nullptr);
  EXPECT_EQ(entry(p, "long")->num_tokens, 256);
  EXPECT_EQ(entry(p, "short")->num_tokens, 100);  // its whole prompt: it samples at once
  EXPECT_TRUE(entry(p, "short")->sample);
}

TEST(SchedulerFairness, SamplesOfAFullyCachedPromptAllStartInTheSameStep) {
  SchedulerConfig c;
  c.num_blocks = 64;
  c.block_size = 16;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 256;
  c.max_model_len = 512;
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  s.add_request(req("warm", 40, 1));  // caches the 2 full prompt blocks
  eng.run_to_completion();
  auto g = s.add_request(req("rs", 40, 3, 4));  // same prompt, n = 4: 2 shared blocks
  const StepPlan p = eng.step();
  for (int i = 0; i < 4; ++i) {
    const ScheduledSeq* e = entry(p, "rs", i);
    ASSERT_NE(e, nullptr) << "sample " << i << " waits although its prompt is cached";
    EXPECT_EQ(e->start, 32);
    EXPECT_EQ(e->num_tokens, 8);
    EXPECT_TRUE(e->sample);
    EXPECT_EQ(g->seq(i).num_cached_prompt_tokens(), 32);
  }
  // The samples share the cached blocks (one copy) rather than each holding its own.
  const auto& t0 = g->seq(0).block_table().blocks;
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(g->seq(i).block_table().blocks[0], t0[0]);
    EXPECT_EQ(g->seq(i).block_table().blocks[1], t0[1]);
  }
  s.check_invariants();
  eng.run_to_completion();
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(g->seq(i).output().size(), 3u);
    for (int k = 0; k < 3; ++k) EXPECT_EQ(g->seq(i).output()[k], testing::fake_token("rs", i, k));
  }
}

TEST(SchedulerFairness, IdenticalPromptsInOneStepEachPrefillAndALaterOneHits) {
  SchedulerConfig c;
  c.num_blocks = 64;
  c.block_size = 16;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 256;
  c.max_model_len = 512;
  Scheduler s(c);
  FakeEngine eng(s);
  eng.stop_tokens = false;
  s.add_request(req("a", 40, 4));
  s.add_request(req("b", 40, 4));
  StepPlan p = eng.step();
  // Blocks are cached when the step computing them is done, so both compute the whole prompt
  // in this step (neither is held back a step to hit the other's blocks).
  ASSERT_NE(entry(p, "a"), nullptr);
  ASSERT_NE(entry(p, "b"), nullptr);
  EXPECT_EQ(entry(p, "a")->start, 0);
  EXPECT_EQ(entry(p, "b")->start, 0);
  EXPECT_EQ(entry(p, "b")->num_tokens, 40);
  auto gc = s.add_request(req("c", 40, 4));
  p = eng.step();
  ASSERT_NE(entry(p, "c"), nullptr);
  EXPECT_EQ(entry(p, "c")->start, 32);  // the next step's arrival hits their blocks
  EXPECT_EQ(gc->seq(0).num_cached_prompt_tokens(), 32);
  eng.run_to_completion();
}

}  // namespace
}  // namespace herd
