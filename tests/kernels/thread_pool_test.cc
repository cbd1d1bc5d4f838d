#include "kernels/cpu/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace herd::cpu {
namespace {

TEST(ThreadPool, ZeroMeansHardwareConcurrency) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.size(), int(std::max(1u, std::thread::hardware_concurrency())));
}

TEST(ThreadPool, RunsEveryTaskExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<bool> bad_index{false};
      pool.parallel_for(n, [&](int64_t task, int thread) {
        hits[size_t(task)].fetch_add(1);
        if (thread < 0 || thread >= threads) bad_index = true;
      });
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[size_t(i)].load(), 1) << "task " << i;
      EXPECT_FALSE(bad_index.load());
    }
  }
}

TEST(ThreadPool, ManyBackToBackCallsSeeCompletedWork) {
  ThreadPool pool(3);
  std::vector<int64_t> data(64, 0);
  for (int round = 0; round < 2000; ++round) {
    pool.parallel_for(64, [&](int64_t i, int) { data[size_t(i)] += i; });
  }
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(data[size_t(i)], 2000 * i);
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.parallel_for(
      4, [&](int64_t, int) { pool.parallel_for(5, [&](int64_t, int) { inner.fetch_add(1); }); });
  EXPECT_EQ(inner.load(), 20);
}

}  // namespace
}  // namespace herd::cpu
