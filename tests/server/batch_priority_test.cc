// Batch requests run behind interactive ones on the real engine: with one sequence running at a
// time, an interactive request submitted after three queued batch requests (EngineClient at
// kBatchPriority) is admitted before the batch requests still waiting. In arrival order it
// would finish last.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "server/engine_client.h"
#include "server/metrics.h"
#include "tests/api/engine_test_util.h"

namespace herd::testing {
namespace {

// Forwards to a real engine and records the order in which requests finish (the engine calls
// sinks from its one thread, in order).
class FinishOrderEngine : public Engine {
 public:
  explicit FinishOrderEngine(std::unique_ptr<Engine> e) : e_(std::move(e)) {}
  void add_request(Request req, OutputSink sink) override {
    std::string id = req.id;
    e_->add_request(std::move(req), [this, id, sink](const Output& o) {
      if (o.request_finished) {
        std::lock_guard<std::mutex> lock(mu_);
        order_.push_back(id);
      }
      sink(o);
    });
  }
  void abort(const std::string& id) override { e_->abort(id); }
  std::vector<std::vector<Output>> generate(std::vector<Request> reqs) override {
    return e_->generate(std::move(reqs));
  }
  const Tokenizer& tokenizer() const override { return e_->tokenizer(); }
  const ModelConfig& model_config() const override { return e_->model_config(); }
  int max_model_len() const override { return e_->max_model_len(); }
  EngineStats stats() const override { return e_->stats(); }
  void shutdown() override { e_->shutdown(); }
  std::vector<std::string> order() const {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

 private:
  std::unique_ptr<Engine> e_;
  mutable std::mutex mu_;
  std::vector<std::string> order_;
};

TEST(BatchPriority, InteractiveRequestOvertakesQueuedBatchRequests) {
  EngineOptions o = tiny_engine_options();
  o.max_num_seqs = 1;  // one sequence at a time: admission order is finish order
  FinishOrderEngine engine(Engine::create(o));
  server::Metrics metrics("tiny");
  server::EngineClient batch(engine, metrics, server::kBatchPriority);
  server::EngineClient interactive(engine, metrics);
  std::vector<std::shared_ptr<server::RequestStream>> streams;
  for (int i = 0; i < 3; ++i)
    streams.push_back(batch.submit(
        {greedy_request(std::string("batch-").append(std::to_string(i)), test_prompt(8, i), 24)}));
  streams.push_back(interactive.submit({greedy_request("interactive", test_prompt(8, 9), 24)}));
  for (auto& s : streams) {
    std::vector<server::StreamEvent> ev;
    while (s->next(ev, std::chrono::milliseconds(100)) != server::RequestStream::Wait::kDone) {
    }
  }
  const auto order = engine.order();
  engine.shutdown();
  ASSERT_EQ(order.size(), 4u);
  const auto pos = [&](const std::string& id) {
    return std::find(order.begin(), order.end(), id) - order.begin();
  };
  // batch-0 may already run when the interactive request arrives; batch-2 still waits.
  EXPECT_LT(pos("interactive"), pos("batch-2"))
      << "finish order: " << order[0] << " " << order[1] << " " << order[2] << " " << order[3];
  EXPECT_LT(pos("interactive"), pos("batch-1"));
}

}  // namespace
}  // namespace herd::testing
