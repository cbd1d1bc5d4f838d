#include "server/task_queue.h"

#include <algorithm>
#include <chrono>

namespace herd::server {

namespace {
// An idle thread beyond the first few exits after this long without work.
constexpr auto kIdleExit = std::chrono::seconds(30);
constexpr size_t kKeepIdle = 8;
}  // namespace

ElasticTaskQueue::ElasticTaskQueue(size_t max_threads)
    : max_threads_(std::max<size_t>(1, max_threads)) {}

ElasticTaskQueue::~ElasticTaskQueue() { shutdown(); }

void ElasticTaskQueue::enqueue(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mu_);
  jobs_.push_back(std::move(fn));
  reap_exited();
  // Only a thread that is idle and not already claimed by an earlier job counts.
  if (idle_ < jobs_.size() && threads_.size() < max_threads_) {
    threads_.emplace_back([this] { worker_loop(); });
  }
  cv_.notify_one();
}

void ElasticTaskQueue::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    bool got = cv_.wait_for(lock, kIdleExit, [this] { return !jobs_.empty() || shutdown_; });
    --idle_;
    if (!got && threads_.size() - exited_.size() > kKeepIdle) {
      exited_.push_back(std::this_thread::get_id());
      return;
    }
    if (jobs_.empty()) {
      if (shutdown_) return;
      continue;
    }
    auto fn = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

void ElasticTaskQueue::reap_exited() {
  for (auto id : exited_) {
    auto it = std::find_if(threads_.begin(), threads_.end(),
                           [&](const std::thread& t) { return t.get_id() == id; });
    if (it != threads_.end()) {
      it->join();  // already returned from worker_loop: joins at once
      threads_.erase(it);
    }
  }
  exited_.clear();
}

void ElasticTaskQueue::shutdown() {
  std::list<std::thread> threads;
  {
    std::unique_lock<std::mutex> lock(mu_);
    shutdown_ = true;
    threads.swap(threads_);
    exited_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads)
    if (t.joinable()) t.join();
}

size_t ElasticTaskQueue::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size() - exited_.size();
}

}  // namespace herd::server
