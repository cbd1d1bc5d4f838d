// A small persistent thread pool for the CPU kernels. Ops call parallel_for() many times per
// decoded token (a few dozen per layer), so the workers stay alive between calls, spin briefly
// before sleeping, and the calling thread does its share of the work instead of waiting idle.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace herd::cpu {

class ThreadPool {
 public:
  // `threads` counts the caller too; 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  // Calls fn(task, thread_index) once for every task in [0, num_tasks), handing tasks out
  // dynamically (an atomic counter) so uneven tasks balance; thread_index < size() lets a task
  // use per-thread scratch. Returns when every task has finished. Calls from inside a task run
  // serially on the calling thread; calls from two outside threads are serialized.
  void parallel_for(int64_t num_tasks, const std::function<void(int64_t, int)>& fn);

 private:
  void worker_main(int index);
  void run_tasks(int thread_index);

  std::vector<std::thread> workers_;
  std::mutex submit_mu_;  // one parallel_for at a time

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;

  // The current job; written by the submitter before bumping generation_.
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t num_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> busy_workers_{0};
};

}  // namespace herd::cpu
