#include "engine/exec/local_executor.h"

#include <stdexcept>

namespace herd {

LocalExecutor::LocalExecutor(std::unique_ptr<ModelRunner> runner) : runner_(std::move(runner)) {
  thread_ = std::thread([this] { loop(); });
}

LocalExecutor::~LocalExecutor() { shutdown(); }

std::future<ExecResult> LocalExecutor::submit(ExecPlan plan, std::function<void()> on_done) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) throw std::logic_error("LocalExecutor: submit after shutdown");
  queue_.push_back(Job{std::move(plan), {}, std::move(on_done)});
  std::future<ExecResult> f = queue_.back().result.get_future();
  cv_.notify_one();
  return f;
}

void LocalExecutor::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void LocalExecutor::loop() {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every submitted plan has run
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      job.result.set_value(runner_->run(job.plan));
    } catch (...) {
      job.result.set_exception(std::current_exception());
    }
    if (job.on_done) job.on_done();
  }
}

}  // namespace herd
