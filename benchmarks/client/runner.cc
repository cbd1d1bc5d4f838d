#include "benchmarks/client/runner.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace herd::bench {

RunResult run_requests(Backend& backend, const std::vector<BenchRequest>& requests,
                       const std::vector<double>& arrivals, int max_concurrency) {
  if (arrivals.size() != requests.size())
    throw std::invalid_argument("run_requests: one arrival time per request");
  RunResult result;
  result.outputs.resize(requests.size());
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::vector<std::thread> threads;
  threads.reserve(requests.size());

  const auto t0 = std::chrono::steady_clock::now();
  const double start = now_s();
  for (size_t i = 0; i < requests.size(); ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::duration<double>(arrivals[i])));
    if (max_concurrency > 0) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < max_concurrency; });
      ++in_flight;
    }
    try {
      threads.emplace_back([&, i] {
        result.outputs[i] = backend.send(requests[i]);
        if (max_concurrency > 0) {
          std::lock_guard<std::mutex> lock(mu);
          --in_flight;
          cv.notify_all();
        }
      });
    } catch (...) {  // out of threads: let the running ones finish before unwinding
      for (auto& t : threads) t.join();
      throw;
    }
  }
  for (auto& t : threads) t.join();
  result.duration = now_s() - start;
  return result;
}

}  // namespace herd::bench
