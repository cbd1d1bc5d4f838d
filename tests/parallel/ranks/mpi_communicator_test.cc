// MpiCommunicator across real ranks: this binary runs under mpirun (tests/parallel/CMakeLists
// herd_mpi_test, np 2 and 4). Every rank runs every test in the same order, so the
// collectives of one test meet the same collectives on the other ranks.
#include "engine/parallel/mpi_communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <numeric>

namespace herd {
namespace {

MpiCommunicator& world() { return MpiRuntime::instance().world(); }

TEST(MpiCommunicator, WorldMatchesLauncher) {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  ASSERT_NE(size, nullptr);
  EXPECT_EQ(world().size(), std::atoi(size));
  EXPECT_EQ(MpiRuntime::instance().world_size(), world().size());
  EXPECT_EQ(MpiRuntime::instance().world_rank(), world().rank());
  EXPECT_TRUE(MpiRuntime::mpi_initialized());
}

TEST(MpiCommunicator, AllReduceF32ExactSums) {
  MpiCommunicator& c = world();
  const int n = c.size(), r = c.rank();
  for (size_t count : {size_t(1), size_t(1037), size_t(1) << 18}) {
    std::vector<float> v(count);
    for (size_t i = 0; i < count; ++i) v[i] = float(r * 1000 + int(i % 4096));
    c.all_reduce_sum(v.data(), count, DType::kF32);
    for (size_t i = 0; i < count; ++i) {
      // Small integers: every partial sum is exact, whatever order MPI adds in.
      const float want = float(1000 * n * (n - 1) / 2 + n * int(i % 4096));
      ASSERT_EQ(v[i], want) << "count " << count << " i " << i;
    }
  }
}

TEST(MpiCommunicator, AllReduceI32) {
  MpiCommunicator& c = world();
  std::vector<int32_t> v = {c.rank(), -1, 1 << 20};
  c.all_reduce_sum(v.data(), v.size(), DType::kI32);
  EXPECT_EQ(v[0], c.size() * (c.size() - 1) / 2);
  EXPECT_EQ(v[1], -c.size());
  EXPECT_EQ(v[2], c.size() << 20);
}

TEST(MpiCommunicator, AllReduceBF16ExactAndRoundedOnce) {
  MpiCommunicator& c = world();
  const int n = c.size(), r = c.rank();
  const size_t count = 515;
  std::vector<uint16_t> v(count);
  // v[0]: 256 on rank 0 and 1 elsewhere. Summed in bf16 step by step every +1 would round
  // away (the spacing at 256 is 2); summed in fp32 and rounded once it is bf16(256 + n - 1)
  // (260 for 4 ranks).
  v[0] = f32_to_bf16(r == 0 ? 256.0f : 1.0f);
  // The rest: (r + 1) * 2^(i % 6), so sums n(n+1)/2 * 2^k are exact in bf16.
  for (size_t i = 1; i < count; ++i) v[i] = f32_to_bf16(float((r + 1) << (i % 6)));
  c.all_reduce_sum(v.data(), count, DType::kBF16);
  EXPECT_EQ(v[0], f32_to_bf16(float(256 + n - 1)));
  for (size_t i = 1; i < count; ++i)
    ASSERT_EQ(bf16_to_f32(v[i]), float((n * (n + 1) / 2) << (i % 6))) << "i " << i;
}

TEST(MpiCommunicator, AllReduceF16) {
  MpiCommunicator& c = world();
  std::vector<uint16_t> v(100);
  for (size_t i = 0; i < v.size(); ++i) v[i] = f32_to_f16(0.5f * float(c.rank() + int(i)));
  c.all_reduce_sum(v.data(), v.size(), DType::kF16);
  const int n = c.size();
  for (size_t i = 0; i < v.size(); ++i)
    ASSERT_EQ(f16_to_f32(v[i]), 0.5f * float(n * (n - 1) / 2 + n * int(i))) << "i " << i;
}

TEST(MpiCommunicator, AllGatherInRankOrder) {
  MpiCommunicator& c = world();
  const int n = c.size();
  std::vector<int32_t> mine = {c.rank() * 10, c.rank() * 10 + 1, c.rank() * 10 + 2};
  std::vector<int32_t> all(3 * size_t(n), -1);
  c.all_gather(mine.data(), all.data(), 3, DType::kI32);
  for (int r = 0; r < n; ++r)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(all[size_t(3 * r + j)], r * 10 + j);
  // 16-bit elements: bits move unchanged.
  std::vector<uint16_t> h = {uint16_t(0xabc0 + c.rank())};
  std::vector<uint16_t> hall(static_cast<size_t>(n));
  c.all_gather(h.data(), hall.data(), 1, DType::kBF16);
  for (int r = 0; r < n; ++r) EXPECT_EQ(hall[size_t(r)], 0xabc0 + r);
}

TEST(MpiCommunicator, BroadcastFromEveryRoot) {
  MpiCommunicator& c = world();
  const size_t bytes = (size_t(1) << 20) + 3;
  for (int root = 0; root < c.size(); ++root) {
    std::vector<uint8_t> v(bytes, 0);
    if (c.rank() == root)
      for (size_t i = 0; i < bytes; ++i) v[i] = uint8_t(i * 7 + size_t(root));
    c.broadcast(v.data(), bytes, root);
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(v[i], uint8_t(i * 7 + size_t(root))) << i;
  }
}

TEST(MpiCommunicator, SendRecvRing) {
  MpiCommunicator& c = world();
  const int n = c.size(), r = c.rank();
  const int next = (r + 1) % n, prev = (r + n - 1) % n;
  // 64 KiB: past the shared-memory eager limit, so a send completes only when its receive is
  // posted. Even ranks send first and odd ranks receive first, as a pipeline would order them.
  for (size_t bytes : {size_t(16), size_t(64) << 10}) {
    std::vector<uint8_t> out(bytes, uint8_t(r + 1)), in(bytes, 0);
    if (r % 2 == 0) {
      c.send(out.data(), bytes, next, 5);
      c.recv(in.data(), bytes, prev, 5);
    } else {
      c.recv(in.data(), bytes, prev, 5);
      c.send(out.data(), bytes, next, 5);
    }
    EXPECT_EQ(in, std::vector<uint8_t>(bytes, uint8_t(prev + 1)));
  }
}

TEST(MpiCommunicator, SendBytesRecvBytesSizes) {
  MpiCommunicator& c = world();
  const std::vector<size_t> sizes = {0, 1, 7, 4096, 65537, size_t(1) << 20};
  auto pattern = [](size_t n, int salt) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = uint8_t((i * 31 + size_t(salt)) >> 2);
    return v;
  };
  // Rank 0 sends every size to every other rank, which echoes each one back changed.
  for (size_t n : sizes) {
    if (c.rank() == 0) {
      for (int p = 1; p < c.size(); ++p) c.send_bytes(pattern(n, p), p, 11);
      for (int p = 1; p < c.size(); ++p) {
        std::vector<uint8_t> back = c.recv_bytes(p, 12);
        EXPECT_EQ(back, pattern(n, p + 100)) << "size " << n << " from " << p;
      }
    } else {
      std::vector<uint8_t> got = c.recv_bytes(0, 11);
      EXPECT_EQ(got, pattern(n, c.rank())) << "size " << n;
      c.send_bytes(pattern(n, c.rank() + 100), 0, 12);
    }
  }
}

TEST(MpiCommunicator, SplitIntoTpAndPpGroups) {
  MpiCommunicator& c = world();
  const int n = c.size(), r = c.rank();
  for (int tp = 1; tp <= n; ++tp) {
    if (n % tp != 0) continue;
    const int pp = n / tp;
    // engine/parallel/layout.h: world rank = pp_rank * tp + tp_rank.
    std::unique_ptr<Communicator> tpg = c.split(r / tp, r);
    std::unique_ptr<Communicator> ppg = c.split(r % tp, r);
    ASSERT_EQ(tpg->size(), tp);
    ASSERT_EQ(tpg->rank(), r % tp);
    ASSERT_EQ(ppg->size(), pp);
    ASSERT_EQ(ppg->rank(), r / tp);
    EXPECT_EQ(tpg->timeout_ms(), c.timeout_ms());
    // A sum over the TP group: the world ranks of one stage.
    int32_t v = r;
    tpg->all_reduce_sum(&v, 1, DType::kI32);
    const int first = (r / tp) * tp;
    EXPECT_EQ(v, tp * first + tp * (tp - 1) / 2) << "tp " << tp;
    // Stage to stage inside the PP group: each stage passes its world rank down the pipe.
    if (pp > 1) {
      int32_t got = -1, mine = r;
      if (ppg->rank() > 0) ppg->recv(&got, sizeof got, ppg->rank() - 1, 1);
      if (ppg->rank() < pp - 1) ppg->send(&mine, sizeof mine, ppg->rank() + 1, 1);
      if (ppg->rank() > 0) {
        EXPECT_EQ(got, r - tp);
      }
    }
    tpg->barrier();
    ppg->barrier();
  }
}

TEST(MpiCommunicator, RecvTimeoutNamesThePeerAndLeavesCommUsable) {
  MpiCommunicator& c = world();
  // A separate communicator: its timeout is the test's, and nothing of it outlives the test.
  std::unique_ptr<Communicator> sub = c.split(0, c.rank());
  auto& comm = static_cast<MpiCommunicator&>(*sub);
  comm.set_timeout_ms(300);
  if (c.rank() == 0) {
    // Rank 1 never sends on tag 99.
    for (int kind = 0; kind < 2; ++kind) {
      const auto t0 = std::chrono::steady_clock::now();
      std::string what;
      try {
        if (kind == 0) {
          int32_t x;
          comm.recv(&x, sizeof x, 1, 99);
        } else {
          comm.recv_bytes(1, 99);
        }
      } catch (const CommError& e) {
        what = e.what();
      }
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      EXPECT_NE(what.find("rank 1"), std::string::npos) << what;
      EXPECT_NE(what.find("300 ms"), std::string::npos) << what;
      EXPECT_NE(what.find(kind == 0 ? "recv with" : "recv_bytes with"), std::string::npos) << what;
      EXPECT_GE(ms, 290.0);
      EXPECT_LT(ms, 3000.0);  // the deadline, plus the last sleep (<= 1 ms), plus a loaded CPU
    }
  }
  // Everyone meets again on the same communicator: the cancelled receive left nothing behind.
  comm.set_timeout_ms(30'000);
  comm.barrier();
  int32_t v = 1;
  comm.all_reduce_sum(&v, 1, DType::kI32);
  EXPECT_EQ(v, c.size());
}

}  // namespace
}  // namespace herd
