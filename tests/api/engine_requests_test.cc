// The Engine API contract (engine/api/engine.h): streamed deltas, usage, n samples, stop
// strings, abort at any moment freeing blocks, bad parameters named, the bounded queue and
// shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "engine/common/error.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/api/engine_test_util.h"

namespace herd {
namespace {

using testing::greedy_request;
using testing::make_test_engine;
using testing::seeded_request;
using testing::test_prompt;
using testing::tiny_engine_options;

// Collects every delta of one request.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Output> deltas;
  bool done = false;
  OutputSink sink() {
    return [this](const Output& o) {
      std::lock_guard<std::mutex> l(mu);
      deltas.push_back(o);
      if (o.request_finished) done = true;
      cv.notify_all();
    };
  }
  void wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
  }
  size_t count() {
    std::lock_guard<std::mutex> l(mu);
    return deltas.size();
  }
};

// Polls until the engine holds no live sequence (bounded: the engine thread is running).
void wait_idle(Engine& e) {
  for (int i = 0; i < 2000; ++i) {
    const EngineStats s = e.stats();
    if (s.running == 0 && s.waiting == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  FAIL() << "engine did not become idle";
}

TEST(EngineRequests, StreamedDeltasAddUpToTheOfflineResult) {
  auto e = make_test_engine(tiny_engine_options());
  Collector c;
  e->add_request(greedy_request("s", test_prompt(30, 1), 12), c.sink());
  c.wait();
  std::vector<int32_t> ids;
  std::string text;
  for (const Output& o : c.deltas) {
    ids.insert(ids.end(), o.token_ids.begin(), o.token_ids.end());
    text += o.text;
  }
  ASSERT_EQ(ids.size(), 12u);
  const Output& last = c.deltas.back();
  EXPECT_TRUE(last.request_finished);
  EXPECT_EQ(last.finish_reason, FinishReason::kLength);
  EXPECT_EQ(last.usage.prompt_tokens, 30);
  EXPECT_EQ(last.usage.completion_tokens, 12);
  for (size_t i = 0; i + 1 < c.deltas.size(); ++i) EXPECT_FALSE(c.deltas[i].request_finished);

  std::vector<Request> again;
  again.push_back(greedy_request("s", test_prompt(30, 1), 12));
  auto r = e->generate(std::move(again));
  EXPECT_EQ(r[0][0].token_ids, ids);
  EXPECT_EQ(r[0][0].text, text);
}

TEST(EngineRequests, NSamplesShareThePromptAndReportSummedUsage) {
  auto e = make_test_engine(tiny_engine_options());
  std::vector<Request> reqs;
  reqs.push_back(seeded_request("n4", test_prompt(50, 2), 10, 42, /*n=*/4));
  auto r = e->generate(std::move(reqs));
  ASSERT_EQ(r[0].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r[0][size_t(i)].index, i);
    EXPECT_EQ(r[0][size_t(i)].token_ids.size(), 10u);
  }
  EXPECT_EQ(r[0][0].usage.completion_tokens, 40);
  EXPECT_EQ(r[0][0].usage.prompt_tokens, 50);
  // Seeded samples of one prompt differ from each other (each has its own RNG stream).
  EXPECT_NE(r[0][0].token_ids, r[0][1].token_ids);
  const EngineStats s = e->stats();
  EXPECT_EQ(s.free_blocks, s.num_blocks);
}

TEST(EngineRequests, StopStringEndsTheSampleAndIsNotEmitted) {
  auto e = make_test_engine(tiny_engine_options());
  // Find what greedy decoding produces, then stop on a piece of it.
  std::vector<Request> probe;
  probe.push_back(greedy_request("p", test_prompt(20, 3), 16));
  const std::string full = e->generate(std::move(probe))[0][0].text;
  ASSERT_GE(full.size(), 6u);
  // A stop string starting at a character boundary in the middle of the text.
  size_t cut = full.size() / 2;
  while (cut > 0 && (static_cast<unsigned char>(full[cut]) & 0xC0) == 0x80) --cut;
  size_t end = cut + 1;
  while (end < full.size() && (static_cast<unsigned char>(full[end]) & 0xC0) == 0x80) ++end;
  const std::string stop = full.substr(cut, end - cut);
  const size_t first = full.find(stop);
  Request r = greedy_request("q", test_prompt(20, 3), 16);
  r.params.stop = {stop};
  std::vector<Request> reqs;
  reqs.push_back(std::move(r));
  auto out = e->generate(std::move(reqs));
  EXPECT_EQ(out[0][0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out[0][0].stop_reason, stop);
  EXPECT_EQ(out[0][0].text, full.substr(0, first));
}

TEST(EngineRequests, AbortWhileQueuedPrefillingOrDecodingFreesEveryBlock) {
  EngineOptions o = tiny_engine_options();
  o.max_num_batched_tokens = 8;  // long prompts prefill over many steps
  o.max_num_seqs = 2;            // later requests stay queued
  auto e = make_test_engine(o);
  std::vector<std::unique_ptr<Collector>> cs;
  for (int i = 0; i < 6; ++i) {
    cs.push_back(std::make_unique<Collector>());
    e->add_request(greedy_request("a" + std::to_string(i), test_prompt(100, i), 500),
                   cs.back()->sink());
  }
  // Let the first ones get going (decoding or prefilling), then abort everything.
  while (cs[0]->count() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (int i = 0; i < 6; ++i) e->abort("a" + std::to_string(i));
  e->abort("no-such-request");  // ignored
  for (auto& c : cs) {
    c->wait();
    EXPECT_EQ(c->deltas.back().finish_reason, FinishReason::kAbort);
    EXPECT_TRUE(c->deltas.back().request_finished);
  }
  wait_idle(*e);
  const EngineStats s = e->stats();
  EXPECT_EQ(s.free_blocks, s.num_blocks);
  EXPECT_EQ(s.kv_usage, 0.0);
}

TEST(EngineRequests, BadParametersAreRejectedNamingTheParameter) {
  auto e = make_test_engine(tiny_engine_options());
  auto param_of = [&](Request r) -> std::string {
    try {
      e->add_request(std::move(r), [](const Output&) {});
    } catch (const InvalidArgument& ex) {
      return ex.param();
    }
    return "<accepted>";
  };
  auto base = [] { return greedy_request("bad", test_prompt(10, 0), 5); };
  Request r = base();
  r.params.temperature = -1;
  EXPECT_EQ(param_of(r), "temperature");
  r = base();
  r.params.top_p = 0;
  EXPECT_EQ(param_of(r), "top_p");
  r = base();
  r.params.top_k = -2;
  EXPECT_EQ(param_of(r), "top_k");
  r = base();
  r.params.n = 0;
  EXPECT_EQ(param_of(r), "n");
  r = base();
  r.params.max_tokens = 0;
  EXPECT_EQ(param_of(r), "max_tokens");
  r = base();
  r.params.max_tokens = e->max_model_len();  // prompt + max_tokens > max_model_len
  EXPECT_EQ(param_of(r), "max_tokens");
  r = base();
  r.params.stop.assign(100, "x");
  EXPECT_EQ(param_of(r), "stop");
  r = base();
  r.params.stop = {std::string("\xff\xfe")};
  EXPECT_EQ(param_of(r), "stop");
  r = base();
  r.params.logit_bias = {{100000, 1.0f}};
  EXPECT_EQ(param_of(r), "logit_bias");
  r = base();
  r.prompt_ids = {5, 100000};
  EXPECT_EQ(param_of(r), "prompt");
  r = base();
  r.prompt_ids.clear();
  EXPECT_NE(param_of(r), "<accepted>");
  r = base();
  r.id.clear();
  EXPECT_EQ(param_of(r), "request_id");
  // A good request still runs after all that.
  std::vector<Request> ok;
  ok.push_back(base());
  EXPECT_EQ(e->generate(std::move(ok))[0][0].token_ids.size(), 5u);
}

TEST(EngineRequests, DuplicateLiveIdIsRejected) {
  EngineOptions o = tiny_engine_options();
  auto e = make_test_engine(o);
  Collector c;
  e->add_request(greedy_request("dup", test_prompt(10, 0), 1000), c.sink());
  EXPECT_THROW(e->add_request(greedy_request("dup", test_prompt(10, 0), 5), [](const Output&) {}),
               InvalidArgument);
  e->abort("dup");
  c.wait();
}

TEST(EngineRequests, QueueBeyondMaxWaitingThrowsQueueFull) {
  EngineOptions o = tiny_engine_options();
  o.max_waiting = 3;
  o.max_num_seqs = 1;
  auto e = make_test_engine(o);
  std::vector<std::unique_ptr<Collector>> cs;
  int accepted = 0;
  bool full = false;
  for (int i = 0; i < 10 && !full; ++i) {
    cs.push_back(std::make_unique<Collector>());
    try {
      e->add_request(greedy_request("q" + std::to_string(i), test_prompt(10, i), 2000),
                     cs.back()->sink());
      ++accepted;
    } catch (const QueueFull&) {
      full = true;
      cs.pop_back();
    }
  }
  EXPECT_TRUE(full);
  EXPECT_LE(accepted, 4);  // 3 waiting + at most 1 already running
  for (int i = 0; i < accepted; ++i) e->abort("q" + std::to_string(i));
  for (auto& c : cs) c->wait();
}

TEST(EngineRequests, ShutdownAbortsWhatIsLeft) {
  auto e = make_test_engine(tiny_engine_options());
  Collector c;
  e->add_request(greedy_request("long", test_prompt(10, 0), 3000), c.sink());
  while (c.count() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  e->shutdown();
  c.wait();
  EXPECT_EQ(c.deltas.back().finish_reason, FinishReason::kAbort);
  EXPECT_THROW(e->add_request(greedy_request("late", test_prompt(10, 0), 5), [](const Output&) {}),
               QueueFull);
}

TEST(EngineRequests, ManyConcurrentSubmitters) {
  auto e = make_test_engine(tiny_engine_options());
  std::vector<std::thread> threads;
  std::atomic<int> finished{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        std::vector<Request> one;
        one.push_back(greedy_request("t" + std::to_string(t) + "-" + std::to_string(i),
                                     test_prompt(8 + i, t), 3));
        auto r = e->generate(std::move(one));
        if (r[0][0].token_ids.size() == 3) ++finished;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(finished.load(), 32);
}

}  // namespace
}  // namespace herd
