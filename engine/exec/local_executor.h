// LocalExecutor: one process, one ModelRunner, run on the executor's own thread so that the
// engine core schedules and processes outputs while the forward runs (with more than one plan
// in flight).
#pragma once

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/exec/executor.h"
#include "engine/exec/model_runner.h"

namespace herd {

class LocalExecutor final : public Executor {
 public:
  explicit LocalExecutor(std::unique_ptr<ModelRunner> runner);
  ~LocalExecutor() override;

  std::future<ExecResult> submit(ExecPlan plan, std::function<void()> on_done = {}) override;
  bool takes_late_masks() const override { return true; }
  void set_logits_hook(LogitsHook hook) override { runner_->set_logits_hook(std::move(hook)); }
  void shutdown() override;

 private:
  struct Job {
    ExecPlan plan;
    std::promise<ExecResult> result;
    std::function<void()> on_done;
  };
  void loop();

  std::unique_ptr<ModelRunner> runner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace herd
