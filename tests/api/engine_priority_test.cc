// Background batch requests (kBatchPriority) yield to interactive ones on the real engine, not
// only in the scheduler's unit tests: with one running slot, an interactive request that
// arrives after a queued batch request still runs first. The order is made certain, not
// likely: both wait behind a request that cannot end by itself (no max_tokens) until the test
// aborts it, so both are waiting when the slot frees.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/engine_test_util.h"

namespace herd {
namespace {

using testing::Collector;
using testing::greedy_request;
using testing::make_test_engine;
using testing::test_prompt;
using testing::tiny_engine_options;

TEST(EnginePriority, InteractiveRequestOvertakesQueuedBatchRequest) {
  EngineOptions o = tiny_engine_options();
  o.max_num_seqs = 1;  // one running slot: everything else waits in priority order
  auto e = make_test_engine(o);

  std::mutex mu;
  std::vector<std::string> first_token_order;  // ids, in the order their first token came
  auto track = [&](const std::string& id, Collector& c) {
    return [&, id, sink = c.sink()](const Output& out) {
      if (!out.token_ids.empty()) {
        std::lock_guard<std::mutex> l(mu);
        if (std::find(first_token_order.begin(), first_token_order.end(), id) ==
            first_token_order.end())
          first_token_order.push_back(id);
      }
      sink(out);
    };
  };

  // The blocker holds the only slot until aborted (max_tokens unset: up to max_model_len).
  Collector blocker, batch, interactive;
  Request b = greedy_request("blocker", test_prompt(8, 1), 1);
  b.params.max_tokens.reset();
  e->add_request(b, track("blocker", blocker));
  // Wait until it runs, so the next two queue behind it.
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (!first_token_order.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  Request rb = greedy_request("batch", test_prompt(12, 2), 4);
  rb.priority = kBatchPriority;
  e->add_request(rb, track("batch", batch));  // arrives first, at batch priority
  Request ri = greedy_request("interactive", test_prompt(12, 3), 4);
  e->add_request(ri, track("interactive", interactive));  // arrives second, interactive
  // Both wait behind the blocker whatever the timing: it cannot finish by itself.
  EXPECT_EQ(e->stats().running, 1);
  e->abort("blocker");

  blocker.wait();
  batch.wait();
  interactive.wait();
  EXPECT_EQ(blocker.last().finish_reason, FinishReason::kAbort);
  EXPECT_EQ(batch.tokens().size(), 4u);
  EXPECT_EQ(interactive.tokens().size(), 4u);
  ASSERT_EQ(first_token_order.size(), 3u);
  EXPECT_EQ(first_token_order[0], "blocker");
  EXPECT_EQ(first_token_order[1], "interactive");
  EXPECT_EQ(first_token_order[2], "batch");
}

}  // namespace
}  // namespace herd
