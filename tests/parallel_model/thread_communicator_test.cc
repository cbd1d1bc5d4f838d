// The in-process Communicator: collectives, point-to-point, split and timeouts.
#include "engine/parallel/thread_communicator.h"

#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <thread>

namespace herd {
namespace {

// Runs fn(rank, comm) on one thread per rank; rethrows the first failure.
void run_ranks(std::vector<std::unique_ptr<Communicator>>& comms,
               const std::function<void(int, Communicator&)>& fn) {
  std::vector<std::exception_ptr> errors(comms.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < comms.size(); ++r)
    threads.emplace_back([&, r] {
      try {
        fn(int(r), *comms[r]);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

TEST(ThreadCommunicator, CollectivesAgreeOnEveryRank) {
  auto comms = make_thread_group(4, 5000);
  run_ranks(comms, [](int r, Communicator& c) {
    EXPECT_EQ(c.rank(), r);
    EXPECT_EQ(c.size(), 4);
    for (int round = 0; round < 20; ++round) {  // back-to-back ops reuse the shared slots
      std::vector<float> v = {float(r), float(r * 10 + round)};
      c.all_reduce_sum(v.data(), v.size(), DType::kF32);
      EXPECT_EQ(v[0], 0 + 1 + 2 + 3);
      EXPECT_EQ(v[1], 60 + 4 * round);
      std::vector<uint16_t> b = {f32_to_bf16(0.5f * float(r + 1))};
      c.all_reduce_sum(b.data(), 1, DType::kBF16);
      EXPECT_EQ(bf16_to_f32(b[0]), 5.0f);
      int32_t mine[2] = {r, -r}, all[8];
      c.all_gather(mine, all, 2, DType::kI32);
      for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(all[2 * i], i);
        EXPECT_EQ(all[2 * i + 1], -i);
      }
      int64_t x = r == 2 ? 1234 + round : -1;
      c.broadcast(&x, sizeof(x), 2);
      EXPECT_EQ(x, 1234 + round);
      c.barrier();
    }
  });
}

TEST(ThreadCommunicator, PointToPointInOrderByTag) {
  auto comms = make_thread_group(2, 5000);
  run_ranks(comms, [](int r, Communicator& c) {
    if (r == 0) {
      for (int i = 0; i < 3; ++i) c.send(&i, sizeof(i), 1, 7);
      int other = 99;
      c.send(&other, sizeof(other), 1, 8);
      c.send_bytes({1, 2, 3}, 1, 7);
    } else {
      int v = 0;
      c.recv(&v, sizeof(v), 0, 8);  // a later tag can be taken first
      EXPECT_EQ(v, 99);
      for (int i = 0; i < 3; ++i) {
        c.recv(&v, sizeof(v), 0, 7);
        EXPECT_EQ(v, i);
      }
      EXPECT_EQ(c.recv_bytes(0, 7), (std::vector<uint8_t>{1, 2, 3}));
      int64_t wrong = 0;
      c.send(&v, sizeof(v), 1, 9);                                   // to itself
      EXPECT_THROW(c.recv(&wrong, sizeof(wrong), 1, 9), CommError);  // size mismatch
    }
  });
}

TEST(ThreadCommunicator, SplitByColorOrderedByKey) {
  auto comms = make_thread_group(6, 5000);
  run_ranks(comms, [](int r, Communicator& c) {
    // Two stages of three TP ranks, keys reversed.
    auto sub = c.split(r / 3, -r);
    EXPECT_EQ(sub->size(), 3);
    EXPECT_EQ(sub->rank(), 2 - r % 3);
    float v = float(r);
    sub->all_reduce_sum(&v, 1, DType::kF32);
    EXPECT_EQ(v, r < 3 ? 0 + 1 + 2 : 3 + 4 + 5);
    auto again = c.split(0, r);  // a second split on the same group
    EXPECT_EQ(again->size(), 6);
    EXPECT_EQ(again->rank(), r);
  });
}

TEST(ThreadCommunicator, TimesOutWithCommErrorAndBreaksTheGroup) {
  auto comms = make_thread_group(2, 100);
  run_ranks(comms, [](int r, Communicator& c) {
    if (r == 1) return;  // never joins
    float v = 1;
    try {
      c.all_reduce_sum(&v, 1, DType::kF32);
      ADD_FAILURE() << "no timeout";
    } catch (const CommError& e) {
      EXPECT_NE(std::string(e.what()).find("timed out after 100 ms"), std::string::npos)
          << e.what();
    }
    EXPECT_THROW(c.barrier(), CommError);  // broken: at once
    int x = 0;
    EXPECT_THROW(c.recv(&x, sizeof(x), 1, 0), CommError);
  });
}

TEST(ThreadCommunicator, RecvTimesOut) {
  auto comms = make_thread_group(2, 50);
  int x = 0;
  EXPECT_THROW(comms[0]->recv(&x, sizeof(x), 1, 3), CommError);
}

}  // namespace
}  // namespace herd
