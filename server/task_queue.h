// A thread pool for cpp-httplib that grows on demand. httplib runs one task per accepted
// connection and the task owns its thread until the client closes the socket, so a fixed pool
// (0.11.4 defaults to max(8, cores - 1) threads) caps concurrent SSE streams at its size. This
// queue starts a new thread whenever no idle thread is waiting, up to max_threads, and lets
// idle threads exit after a while.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace herd::server {

class ElasticTaskQueue : public httplib::TaskQueue {
 public:
  explicit ElasticTaskQueue(size_t max_threads);
  ~ElasticTaskQueue() override;

  void enqueue(std::function<void()> fn) override;
  // Runs every queued task, then joins all threads.
  void shutdown() override;

  size_t threads() const;

 private:
  void worker_loop();
  void reap_exited();  // joins threads that exited on idle timeout (mutex held)

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
  std::vector<std::thread::id> exited_;
  size_t idle_ = 0;
  bool shutdown_ = false;
};

}  // namespace herd::server
