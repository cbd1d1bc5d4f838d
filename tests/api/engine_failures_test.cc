// Failures fail loudly (issue 14 items 4-6): a non-finite logit fails only its request and is
// counted; a failed step (a device fault) makes the engine unhealthy, ends every live request
// with an error and refuses new ones; an abort only ever hits the request that was live under
// the id when abort() was called.
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "engine/common/error.h"
#include "tests/api/engine_test_util.h"

namespace herd {
namespace {

using testing::Collector;
using testing::greedy_request;
using testing::make_test_engine;
using testing::seeded_request;
using testing::test_prompt;
using testing::tiny_engine_options;

// Runs "victim" and "bystander" together; the hook poisons the victim's row with `bad` at its
// third sampled token. The bystander must produce exactly what it produces alone.
void check_poisoned_row_fails_only_its_request(float bad, int micro_batches = 1) {
  EngineOptions o = tiny_engine_options();
  o.parallel.micro_batches = micro_batches;
  std::vector<int32_t> alone;
  {
    auto e = make_test_engine(o);
    std::vector<Request> reqs;
    reqs.push_back(seeded_request("bystander", test_prompt(20, 1), 12, 42));
    alone = e->generate(std::move(reqs))[0][0].token_ids;
    ASSERT_EQ(alone.size(), 12u);
  }
  auto e = make_test_engine(o);
  int victim_rows = 0;
  e->set_logits_hook([&](const std::string& id, int, std::span<float> row) {
    if (id == "victim" && ++victim_rows == 3) row[7] = bad;
  });
  std::vector<Request> reqs;
  reqs.push_back(seeded_request("victim", test_prompt(20, 2), 12, 7, /*n=*/2));
  reqs.push_back(seeded_request("bystander", test_prompt(20, 1), 12, 42));
  const auto out = e->generate(std::move(reqs));
  // The victim ends with an error on every sample, after the two tokens it sampled cleanly
  // (its samples run in lockstep: the third row is sample 0's or sample 1's second token).
  for (const Output& s : out[0]) {
    EXPECT_EQ(s.finish_reason, FinishReason::kAbort);
    EXPECT_NE(s.error.find("non-finite"), std::string::npos) << s.error;
    EXPECT_LE(s.token_ids.size(), 2u);
    for (int32_t t : s.token_ids) EXPECT_NE(t, 0);  // never the NaN row's argmax
  }
  EXPECT_TRUE(out[0][0].request_finished);
  // The bystander, in the same batches, is untouched.
  EXPECT_EQ(out[1][0].token_ids, alone);
  EXPECT_EQ(out[1][0].finish_reason, FinishReason::kLength);
  EXPECT_TRUE(out[1][0].error.empty());
  const EngineStats st = e->stats();
  EXPECT_EQ(st.nonfinite_logit_errors, 1);
  EXPECT_TRUE(st.healthy);
  EXPECT_TRUE(e->health().healthy);
  EXPECT_EQ(st.free_blocks, st.num_blocks);
  // The engine keeps serving.
  std::vector<Request> more;
  more.push_back(seeded_request("bystander", test_prompt(20, 1), 12, 42));
  EXPECT_EQ(e->generate(std::move(more))[0][0].token_ids, alone);
}

TEST(EngineFailures, NanLogitFailsOnlyItsRequestAndIsCounted) {
  check_poisoned_row_fails_only_its_request(std::numeric_limits<float>::quiet_NaN());
}

TEST(EngineFailures, InfiniteLogitFailsOnlyItsRequestAndIsCounted) {
  check_poisoned_row_fails_only_its_request(std::numeric_limits<float>::infinity());
  check_poisoned_row_fails_only_its_request(-std::numeric_limits<float>::infinity());
}

// With plans in flight the poisoned row's request may have another plan in flight (its other
// sample in the other micro-batch): that one lands later and is ignored.
TEST(EngineFailures, NanLogitWithPlansInFlightFailsOnlyItsRequest) {
  check_poisoned_row_fails_only_its_request(std::numeric_limits<float>::quiet_NaN(), 2);
}

// An abort that arrives while plans naming the request are in flight: the request ends at
// once (final kAbort delta), its in-flight entries are ignored when they land, its blocks come
// back only then, and the request sharing those plans is untouched.
TEST(EngineFailures, AbortWhilePlansAreInFlight) {
  EngineOptions o = tiny_engine_options();
  o.parallel.micro_batches = 2;
  std::vector<int32_t> alone;
  {
    auto e = make_test_engine(o);
    std::vector<Request> reqs;
    reqs.push_back(seeded_request("bystander", test_prompt(20, 1), 12, 42));
    alone = e->generate(std::move(reqs))[0][0].token_ids;
  }
  auto e = make_test_engine(o);
  int victim_rows = 0;
  e->set_logits_hook([&](const std::string& id, int, std::span<float>) {
    if (id == "victim" && ++victim_rows == 3) e->abort("victim");  // from the executor thread
  });
  std::vector<Request> reqs;
  reqs.push_back(seeded_request("victim", test_prompt(20, 2), 12, 7, /*n=*/2));
  reqs.push_back(seeded_request("bystander", test_prompt(20, 1), 12, 42));
  const auto out = e->generate(std::move(reqs));
  for (const Output& s : out[0]) {
    EXPECT_EQ(s.finish_reason, FinishReason::kAbort);
    EXPECT_TRUE(s.error.empty()) << s.error;
    EXPECT_LT(s.token_ids.size(), 12u);
  }
  EXPECT_EQ(out[1][0].token_ids, alone);
  const EngineStats st = e->stats();
  EXPECT_EQ(st.free_blocks, st.num_blocks);
  EXPECT_TRUE(st.healthy);
}

TEST(EngineFailures, FailedStepMakesTheEngineUnhealthyAndEndsLiveRequestsWithAnError) {
  EngineOptions o = tiny_engine_options();
  o.test_fail_step_after = 3;
  auto e = make_test_engine(o);
  EXPECT_TRUE(e->health().healthy);
  Collector a, b;
  e->add_request(greedy_request("a", test_prompt(10, 0), 200), a.sink());
  e->add_request(greedy_request("b", test_prompt(12, 1), 200), b.sink());
  a.wait();
  b.wait();
  for (Collector* c : {&a, &b}) {
    EXPECT_EQ(c->last().finish_reason, FinishReason::kAbort);
    EXPECT_TRUE(c->last().request_finished);
    EXPECT_NE(c->last().error.find("injected device fault"), std::string::npos);
  }
  // a was queued before the first step, so it sampled in each of the three steps that ran;
  // b may have joined a step later.
  EXPECT_EQ(a.tokens().size(), 3u);
  EXPECT_LE(b.tokens().size(), 3u);
  const EngineHealth h = e->health();
  EXPECT_FALSE(h.healthy);
  EXPECT_NE(h.reason.find("injected device fault"), std::string::npos) << h.reason;
  EXPECT_FALSE(e->stats().healthy);
  EXPECT_THROW(e->add_request(greedy_request("c", test_prompt(10, 0), 5), [](const Output&) {}),
               EngineUnavailable);
  std::vector<Request> reqs;
  reqs.push_back(greedy_request("d", test_prompt(10, 0), 5));
  EXPECT_THROW(e->generate(std::move(reqs)), EngineUnavailable);
  e->abort("a");  // harmless
  e->shutdown();
}

// Request A (id "x") samples its last token; while that step runs, abort("x") is called (A is
// live). Either the step lands first (A finishes by length, its sink adds request B with the
// same id "x", and the queued abort then finds B: it must not touch it), or the engine core,
// which wakes for aborts while a plan is in flight, applies it first (A ends aborted and its
// sink adds B afterwards). Which one happens is a race between the executor and the engine
// thread; in both, B must run to its end.
TEST(EngineFailures, StaleAbortDoesNotHitANewRequestReusingTheId) {
  auto e = make_test_engine(tiny_engine_options());
  Collector a, b;
  bool aborted_once = false;
  e->set_logits_hook([&](const std::string& id, int, std::span<float>) {
    if (id == "x" && !aborted_once) {
      aborted_once = true;
      e->abort("x");  // A is live: the abort is queued for the next step
    }
  });
  a.on_final = [&](const Output&) {
    // A has finished (kLength, its only token); "x" is free again.
    e->add_request(greedy_request("x", test_prompt(15, 3), 6), b.sink());
  };
  e->add_request(greedy_request("x", test_prompt(10, 0), 1), a.sink());
  a.wait();
  b.wait();
  EXPECT_TRUE(aborted_once);
  EXPECT_TRUE(a.last().finish_reason == FinishReason::kLength ||
              a.last().finish_reason == FinishReason::kAbort);
  EXPECT_EQ(b.last().finish_reason, FinishReason::kLength) << "the stale abort hit request B";
  EXPECT_EQ(b.tokens().size(), 6u);
}

// abort("y") while no "y" is live, then a request "y" added before the next step: the abort
// was for nothing live and must not hit the new request (both happen inside one step, from
// the logits hook, so the order is deterministic).
TEST(EngineFailures, AbortOfAnIdNotYetLiveDoesNotHitARequestAddedLater) {
  auto e = make_test_engine(tiny_engine_options());
  Collector driver, y;
  bool done = false;
  e->set_logits_hook([&](const std::string& id, int, std::span<float>) {
    if (id == "driver" && !done) {
      done = true;
      e->abort("y");
      e->add_request(greedy_request("y", test_prompt(12, 4), 4), y.sink());
    }
  });
  e->add_request(greedy_request("driver", test_prompt(10, 0), 3), driver.sink());
  driver.wait();
  y.wait();
  EXPECT_EQ(y.last().finish_reason, FinishReason::kLength) << "an earlier abort hit request y";
  EXPECT_EQ(y.tokens().size(), 4u);
}

TEST(EngineFailures, LiveIdIsRejectedNamingRequestIdUntilItsFinalDelta) {
  auto e = make_test_engine(tiny_engine_options());
  Collector a;
  e->add_request(greedy_request("dup", test_prompt(10, 0), 1000), a.sink());
  try {
    e->add_request(greedy_request("dup", test_prompt(10, 0), 5), [](const Output&) {});
    FAIL() << "a live id was accepted twice";
  } catch (const InvalidArgument& ex) {
    EXPECT_EQ(ex.param(), "request_id");
  }
  e->abort("dup");
  a.wait();
  // Once its final delta is out, the id may be reused.
  std::vector<Request> reqs;
  reqs.push_back(greedy_request("dup", test_prompt(10, 0), 3));
  EXPECT_EQ(e->generate(std::move(reqs))[0][0].token_ids.size(), 3u);
}

}  // namespace
}  // namespace herd
