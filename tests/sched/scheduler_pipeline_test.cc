// The scheduler with plans in flight: tokens count as scheduled when the plan is made, plans
// land in order, finished sequences keep their blocks while a plan in flight names them, and
// micro_batches splits the batch across the plans in flight. Unit tests, then a randomized
// property test over depths 1..4 (aborts and finishes of sequences in flight included) and an
// equivalence property: outputs do not depend on depth or micro-batching.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/common/error.h"
#include "engine/sched/scheduler.h"
#include "tests/sched/pipeline_engine.h"

namespace herd {
namespace {

using testing::history_token;
using testing::is_stop_token;
using testing::make_prompt;
using testing::PipelineEngine;

SchedulerConfig config(int num_blocks = 64, int block_size = 16) {
  SchedulerConfig c;
  c.num_blocks = num_blocks;
  c.block_size = block_size;
  c.max_num_seqs = 8;
  c.max_num_batched_tokens = 256;
  c.max_model_len = 512;
  return c;
}

NewRequest req(const std::string& id, int prompt_len, int max_tokens, int priority = 0) {
  NewRequest r;
  r.request_id = id;
  r.prompt = make_prompt(prompt_len);
  r.max_tokens = max_tokens;
  r.priority = priority;
  return r;
}

std::string rid(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "r%d", i);
  return buf;
}

std::vector<int32_t> tokens_for(const StepPlan& p) {
  std::vector<int32_t> t;
  for (const auto& e : p.entries)
    if (e.sample) t.push_back(7);
  return t;
}

TEST(SchedulerPipeline, PlansGetIncreasingIdsAndEmptyPlansAreNotInFlight) {
  Scheduler s(config());
  EXPECT_EQ(s.schedule().id, -1);
  s.add_request(req("a", 10, 5));
  const StepPlan p1 = s.schedule();
  EXPECT_EQ(p1.id, 0);
  EXPECT_EQ(s.num_in_flight(), 1);
  const StepPlan p2 = s.schedule();  // a waits for its sampled token
  EXPECT_TRUE(p2.empty());
  EXPECT_EQ(s.num_in_flight(), 1);
  EXPECT_NO_THROW(s.on_step_done(p2, {}));  // landing an empty plan is a no-op
  s.on_step_done(p1, tokens_for(p1));
  EXPECT_EQ(s.num_in_flight(), 0);
  const StepPlan p3 = s.schedule();
  EXPECT_EQ(p3.id, 1);
  s.check_invariants();
}

TEST(SchedulerPipeline, ADecodeIsNeverInTwoPlansInFlight) {
  Scheduler s(config());
  s.add_request(req("a", 10, 5));
  const StepPlan p1 = s.schedule();
  ASSERT_EQ(p1.entries.size(), 1u);
  EXPECT_TRUE(p1.entries[0].sample);
  EXPECT_EQ(p1.entries[0].seq->num_scheduled(), 10);
  EXPECT_EQ(p1.entries[0].seq->num_computed(), 0);
  EXPECT_EQ(p1.entries[0].seq->num_in_flight(), 1);
  s.add_request(req("b", 10, 5));
  const StepPlan p2 = s.schedule();  // only b: a's next token is not known yet
  ASSERT_EQ(p2.entries.size(), 1u);
  EXPECT_EQ(p2.entries[0].seq->request_id(), "b");
  EXPECT_TRUE(s.schedule().empty());
  s.check_invariants();
  s.on_step_done(p1, tokens_for(p1));
  const StepPlan p3 = s.schedule();  // a decodes, b still waits for p2
  ASSERT_EQ(p3.entries.size(), 1u);
  EXPECT_EQ(p3.entries[0].seq->request_id(), "a");
  EXPECT_EQ(p3.entries[0].start, 10);
  EXPECT_EQ(p3.entries[0].num_tokens, 1);
  s.check_invariants();
}

TEST(SchedulerPipeline, AChunkedPromptIsPipelinedIntoConsecutivePlans) {
  auto c = config();
  c.max_num_batched_tokens = 32;
  Scheduler s(c);
  s.add_request(req("a", 100, 3));
  const int starts[] = {0, 32, 64, 96}, sizes[] = {32, 32, 32, 4};
  std::vector<StepPlan> plans;
  for (int i = 0; i < 4; ++i) {
    plans.push_back(s.schedule());
    const StepPlan& p = plans.back();
    ASSERT_EQ(p.entries.size(), 1u);
    EXPECT_EQ(p.entries[0].start, starts[i]);
    EXPECT_EQ(p.entries[0].num_tokens, sizes[i]);
    EXPECT_EQ(p.entries[0].sample, i == 3);
    EXPECT_EQ(s.num_in_flight(), i + 1);
    s.check_invariants();
  }
  EXPECT_TRUE(s.schedule().empty());  // the sampled token is not known yet
  const Sequence& a = *plans[0].entries[0].seq;
  // Each plan's copied block table covers its own tokens, even though the sequence's table
  // grew after it was made.
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(plans[size_t(i)].entries[0].block_table.size(),
              size_t((starts[i] + sizes[i] + 15) / 16));
  for (int i = 0; i < 4; ++i) {
    s.on_step_done(plans[size_t(i)], tokens_for(plans[size_t(i)]));
    EXPECT_EQ(a.num_computed(), starts[i] + sizes[i]);
    s.check_invariants();
  }
  EXPECT_EQ(a.output().size(), 1u);
}

TEST(SchedulerPipeline, AbortOfASequenceInFlightFreesItsBlocksOnlyAfterLanding) {
  Scheduler s(config());
  s.add_request(req("a", 40, 5));  // 3 blocks
  const StepPlan p1 = s.schedule();
  ASSERT_EQ(p1.entries.size(), 1u);
  EXPECT_TRUE(s.abort("a"));
  EXPECT_EQ(s.find("a"), nullptr);
  EXPECT_FALSE(s.has_unfinished());
  EXPECT_EQ(s.kv().pool().num_owned_blocks(), 3);  // p1 still writes them
  s.check_invariants();
  EXPECT_TRUE(s.schedule().empty());  // the request id is free again, the Sequence alive
  EXPECT_TRUE(p1.entries[0].seq->finished());
  EXPECT_EQ(p1.entries[0].seq->finish_reason(), FinishReason::kAbort);
  s.check_invariants();
  EXPECT_TRUE(s.on_step_done(p1, tokens_for(p1)).empty());  // skipped: no token appended
  EXPECT_TRUE(p1.entries[0].seq->output().empty());
  EXPECT_EQ(s.kv().pool().num_owned_blocks(), 0);
  s.check_invariants();
  // Nothing of the aborted sequence went into the prefix cache.
  s.add_request(req("a", 40, 5));
  const StepPlan p2 = s.schedule();
  ASSERT_EQ(p2.entries.size(), 1u);
  EXPECT_EQ(p2.entries[0].start, 0);
}

TEST(SchedulerPipeline, OutOfOrderLandingThrows) {
  Scheduler s(config());
  s.add_request(req("a", 10, 5));
  s.add_request(req("b", 10, 5));
  const StepPlan p1 = s.schedule();
  s.add_request(req("c", 10, 5));
  const StepPlan p2 = s.schedule();
  ASSERT_FALSE(p1.empty());
  ASSERT_FALSE(p2.empty());
  EXPECT_THROW(s.on_step_done(p2, tokens_for(p2)), std::logic_error);
  s.check_invariants();
  s.on_step_done(p1, tokens_for(p1));
  EXPECT_THROW(s.on_step_done(p1, tokens_for(p1)), std::logic_error);  // landed twice
  s.on_step_done(p2, tokens_for(p2));
  EXPECT_EQ(s.num_in_flight(), 0);
  s.check_invariants();
}

TEST(SchedulerPipeline, MicroBatchesSplitEightDecodesFourAndFour) {
  auto c = config();
  c.micro_batches = 2;
  Scheduler s(c);
  PipelineEngine eng(s, 2);
  eng.stop_tokens = false;
  for (int i = 0; i < 8; ++i) s.add_request(req(rid(i), 10, 40));
  std::vector<std::set<const Sequence*>> sets;
  for (int step = 0; step < 12; ++step) {
    while (eng.can_schedule()) {
      const StepPlan p = eng.schedule();
      ASSERT_FALSE(p.empty()) << "step " << step;
      EXPECT_EQ(p.entries.size(), 4u) << "step " << step;
      std::set<const Sequence*> set;
      for (const auto& e : p.entries) set.insert(e.seq);
      sets.push_back(set);
      s.check_invariants();
    }
    eng.land();
    s.check_invariants();
  }
  ASSERT_GE(sets.size(), 6u);
  for (size_t i = 2; i < sets.size(); ++i) EXPECT_EQ(sets[i], sets[i - 2]) << "plan " << i;
  std::set<const Sequence*> both = sets[0];
  both.insert(sets[1].begin(), sets[1].end());
  EXPECT_EQ(both.size(), 8u);
}

TEST(SchedulerPipeline, MicroBatchesMustBePositive) {
  auto c = config();
  c.micro_batches = 0;
  EXPECT_THROW(Scheduler{c}, InvalidArgument);
}

TEST(SchedulerPipeline, FinishOfADecodeInFlightSkipsItsLanding) {
  Scheduler s(config());
  s.add_request(req("a", 10, 5));
  const StepPlan p1 = s.schedule();
  s.on_step_done(p1, tokens_for(p1));
  const StepPlan p2 = s.schedule();  // a decodes
  ASSERT_EQ(p2.entries.size(), 1u);
  Sequence* a = p2.entries[0].seq;
  s.finish(a, FinishReason::kStop);  // e.g. a stop string seen late
  EXPECT_GT(s.kv().pool().num_owned_blocks(), 0);
  s.check_invariants();
  EXPECT_TRUE(s.on_step_done(p2, tokens_for(p2)).empty());
  EXPECT_EQ(a->output().size(), 1u);  // the landed token is not appended
  EXPECT_EQ(a->finish_reason(), FinishReason::kStop);
  EXPECT_EQ(s.kv().pool().num_owned_blocks(), 0);
  s.check_invariants();
}

TEST(SchedulerPipeline, PreemptionNeverPicksASequenceInFlight) {
  auto c = config(/*num_blocks=*/3, /*block_size=*/4);
  c.max_num_batched_tokens = 4;
  c.max_model_len = 12;
  Scheduler s(c);
  s.add_request(req("b", 2, 5, /*priority=*/1));
  const StepPlan p1 = s.schedule();  // b: 1 block, samples
  s.add_request(req("a", 11, 1, /*priority=*/0));
  const StepPlan p2 = s.schedule();  // a [0, 4)
  const StepPlan p3 = s.schedule();  // a [4, 8)
  ASSERT_EQ(p2.entries.size(), 1u);
  ASSERT_EQ(p3.entries.size(), 1u);
  EXPECT_EQ(p3.entries[0].start, 4);
  EXPECT_EQ(s.kv().pool().num_free_blocks(), 0);
  // a needs a third block; b (less important) and a itself are in flight: a waits.
  const StepPlan p4 = s.schedule();
  EXPECT_TRUE(p4.empty());
  EXPECT_TRUE(p4.preempted.empty());
  EXPECT_EQ(s.stats().preemptions, 0);
  s.check_invariants();
  s.on_step_done(p1, tokens_for(p1));
  s.on_step_done(p2, tokens_for(p2));
  s.on_step_done(p3, tokens_for(p3));
  s.check_invariants();
}

// --- Randomized: interleavings of add, schedule (up to depth in flight), land, abort, finish.

struct StreamOptions {
  AdmissionPolicy policy = AdmissionPolicy::kOptimistic;
  int depth = 1;
  int micro_batches = 1;
  bool interrupts = true;  // random aborts and finishes (off for the equivalence property)
};

struct StreamOutcome {
  std::map<std::string, std::vector<std::vector<int32_t>>> outputs;  // of unaborted requests
  int64_t preemptions = 0;
  int max_in_flight = 0;
  int interrupted_in_flight = 0;  // aborts/finishes of sequences named by a plan in flight
  bool ok = true;
};

StreamOutcome run_stream(int stream, const StreamOptions& o) {
  // Requests and config come from their own generator so that they do not depend on the
  // interleaving (the equivalence property compares runs that differ only in that).
  std::mt19937 req_rng(uint32_t(stream) * 104729u + 3u);
  auto ru = [&req_rng](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(req_rng);
  };
  std::mt19937 rng(uint32_t(stream) * 7919u + uint32_t(o.depth) * 31u +
                   uint32_t(o.micro_batches) * 17u + 1u);
  auto uni = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  SchedulerConfig c;
  c.block_size = std::vector<int>{1, 2, 4, 8}[ru(0, 3)];
  c.num_blocks = ru(3, 40);
  c.max_model_len = std::max(2, std::min(c.num_blocks * c.block_size, ru(8, 64)));
  c.max_num_seqs = ru(1, 8);
  c.enable_prefix_caching = ru(0, 1) == 1;
  c.enable_chunked_prefill = ru(0, 3) != 0;
  c.max_num_batched_tokens = c.enable_chunked_prefill ? ru(1, 48) : c.max_model_len + ru(0, 16);
  c.long_prefill_token_threshold = ru(0, 1) == 0 ? 0 : ru(1, 16);
  c.policy = o.policy;
  c.micro_batches = o.micro_batches;
  Scheduler s(c);
  PipelineEngine eng(s, o.depth);

  std::vector<std::vector<int32_t>> prefixes(3);
  for (auto& p : prefixes) {
    p.resize(ru(0, 20));
    for (auto& t : p) t = ru(1, 6);
  }
  struct Pending {
    int at;
    NewRequest r;
  };
  std::vector<Pending> pending;
  for (int i = ru(3, 20); i > 0; --i) {
    NewRequest r;
    char buf[32];
    std::snprintf(buf, sizeof buf, "s%d-r%d", stream, i);
    r.request_id = buf;
    auto prompt = std::make_shared<std::vector<int32_t>>(prefixes[ru(0, 2)]);
    for (int k = ru(1, 12); k > 0; --k) prompt->push_back(ru(1, 6));
    if (int(prompt->size()) >= c.max_model_len) prompt->resize(c.max_model_len - 1);
    r.prompt = prompt;
    r.n = ru(1, std::min(3, c.max_num_seqs));
    r.max_tokens = ru(1, 20);
    r.priority = ru(0, 2);
    r.cache_salt = ru(0, 3) == 0 ? "tenant" : "";
    pending.push_back({ru(0, 60), std::move(r)});
  }

  StreamOutcome out;
  std::map<std::string, std::shared_ptr<SequenceGroup>> groups;
  std::set<std::string> interrupted;
  auto check = [&](const char* after, int call) {
    try {
      s.check_invariants();
    } catch (const std::logic_error& e) {
      ADD_FAILURE() << "stream " << stream << " depth " << o.depth << " call " << call << " after "
                    << after << ": " << e.what();
      out.ok = false;
    }
  };
  const int max_calls = 20000;
  int call = 0;
  for (; call < max_calls && out.ok && !::testing::Test::HasFailure(); ++call) {
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->at > call) {
        ++it;
        continue;
      }
      try {
        groups[it->r.request_id] = s.add_request(it->r);
      } catch (const InvalidArgument& e) {
        EXPECT_EQ(o.policy, AdmissionPolicy::kReserve) << e.what();
      }
      it = pending.erase(it);
      check("add_request", call);
    }
    if (o.interrupts && !groups.empty() && uni(0, 99) < 4) {
      auto it = groups.begin();
      std::advance(it, uni(0, int(groups.size()) - 1));
      SequenceGroup& g = *it->second;
      if (!g.finished()) {
        bool flying = false;
        for (int i = 0; i < g.n(); ++i) flying |= g.seq(i).num_in_flight() > 0;
        out.interrupted_in_flight += flying;
        interrupted.insert(it->first);
        Sequence& q = g.seq(uni(0, g.n() - 1));
        if (uni(0, 1) == 0 || q.output().empty()) {
          EXPECT_TRUE(s.abort(it->first));
          check("abort", call);
        } else {
          // The engine finishing one sample (a stop string, say) between schedule and landing.
          // Only a sample that has sampled: finishing a leader that still prefills the
          // shared prompt would leave the other samples waiting for it forever.
          s.finish(&q, FinishReason::kStop);
          check("finish", call);
        }
      }
    }
    if (pending.empty() && !s.has_unfinished() && eng.in_flight() == 0) break;
    bool landed = false;
    if (eng.can_schedule() && (eng.in_flight() == 0 || uni(0, 99) < 60)) {
      const StepPlan p = eng.schedule();
      check("schedule", call);
      out.max_in_flight = std::max(out.max_in_flight, s.num_in_flight());
      EXPECT_LE(int(p.entries.size()), c.max_num_seqs);
      if (o.policy == AdmissionPolicy::kReserve) {
        EXPECT_TRUE(p.preempted.empty());
      }
      if (p.empty() && p.preempted.empty() && eng.in_flight() == 0 && s.has_unfinished() &&
          pending.empty()) {
        ADD_FAILURE() << "stream " << stream << " stalled at call " << call;
        out.ok = false;
      }
      if (p.empty() && eng.in_flight() > 0) landed = true;
    } else if (eng.in_flight() > 0) {
      landed = true;
    }
    if (landed) {
      eng.land();
      check("on_step_done", call);
    }
  }
  EXPECT_LT(call, max_calls) << "stream " << stream << " did not drain";
  if (::testing::Test::HasFailure()) out.ok = false;
  if (!out.ok) return out;
  EXPECT_FALSE(s.has_unfinished());
  EXPECT_EQ(s.num_in_flight(), 0);

  for (const auto& [id, gp] : groups) {
    const SequenceGroup& g = *gp;
    std::vector<std::vector<int32_t>> outs;
    for (int i = 0; i < g.n(); ++i) {
      const Sequence& q = g.seq(i);
      EXPECT_TRUE(q.finished()) << id;
      const auto& toks = q.output();
      for (size_t k = 0; k < toks.size(); ++k) {
        EXPECT_EQ(toks[k], history_token(q, q.num_prompt_tokens() + int(k))) << id << " " << k;
        if (k + 1 < toks.size()) {
          EXPECT_FALSE(is_stop_token(toks[k])) << id;
        }
      }
      if (!interrupted.count(id)) {
        if (q.finish_reason() == FinishReason::kStop) {
          EXPECT_TRUE(is_stop_token(toks.back()));
        }
        if (q.finish_reason() == FinishReason::kLength) {
          EXPECT_TRUE(int(toks.size()) == g.max_tokens() || q.num_tokens() == c.max_model_len);
        }
        EXPECT_NE(q.finish_reason(), FinishReason::kAbort) << id;
      }
      outs.push_back(toks);
    }
    if (!interrupted.count(id)) out.outputs[id] = std::move(outs);
  }
  EXPECT_EQ(s.kv().pool().num_owned_blocks(), 0) << "stream " << stream;
  EXPECT_EQ(s.kv().pool().num_free_blocks(), c.num_blocks);
  out.preemptions = s.stats().preemptions;
  if (::testing::Test::HasFailure()) out.ok = false;
  return out;
}

class SchedulerPipelineProperty
    : public ::testing::TestWithParam<std::tuple<AdmissionPolicy, int>> {};

TEST_P(SchedulerPipelineProperty, RandomInterleavingsKeepInvariantsAndDrain) {
  const auto [policy, depth] = GetParam();
  int64_t preemptions = 0, interrupted_in_flight = 0;
  int max_in_flight = 0;
  for (int stream = 0; stream < 400; ++stream) {
    StreamOptions o;
    o.policy = policy;
    o.depth = depth;
    o.micro_batches = 1 + stream % depth;
    const StreamOutcome r = run_stream(stream, o);
    if (!r.ok) {
      ADD_FAILURE() << "first failing stream: " << stream << " (micro_batches " << o.micro_batches
                    << ")";
      return;
    }
    preemptions += r.preemptions;
    interrupted_in_flight += r.interrupted_in_flight;
    max_in_flight = std::max(max_in_flight, r.max_in_flight);
  }
  EXPECT_EQ(max_in_flight, depth);
  if (policy == AdmissionPolicy::kOptimistic) {
    EXPECT_GT(preemptions, 0);
  }
  if (depth > 1) {
    EXPECT_GT(interrupted_in_flight, 0);
  }
}

TEST_P(SchedulerPipelineProperty, OutputsDoNotDependOnDepthOrMicroBatches) {
  const auto [policy, depth] = GetParam();
  for (int stream = 0; stream < 150; ++stream) {
    StreamOptions base;
    base.policy = policy;
    base.interrupts = false;
    const StreamOutcome ref = run_stream(stream, base);
    StreamOptions o = base;
    o.depth = depth;
    o.micro_batches = 1 + (stream / 2) % depth;
    const StreamOutcome got = run_stream(stream, o);
    if (!ref.ok || !got.ok) {
      ADD_FAILURE() << "stream " << stream << " failed";
      return;
    }
    ASSERT_EQ(got.outputs, ref.outputs)
        << "stream " << stream << " depth " << depth << " micro_batches " << o.micro_batches;
  }
}

INSTANTIATE_TEST_SUITE_P(Depths, SchedulerPipelineProperty,
                         ::testing::Combine(::testing::Values(AdmissionPolicy::kReserve,
                                                              AdmissionPolicy::kOptimistic),
                                            ::testing::Values(1, 2, 3, 4)));

}  // namespace
}  // namespace herd
