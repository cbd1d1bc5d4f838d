// bench_cpu_kernels: how close the CPU backend's linear() gets to the machine's memory-read
// bandwidth. Decode is memory-bound (every weight byte is read once per step), so the ceiling
// is the streaming-read bandwidth, measured here with the same thread pool and thread count.
// Weights are rotated through copies totalling well over the last-level cache so that each
// call really reads from DRAM.
//
// usage: bench_cpu_kernels [--threads N] [--seconds S] [--buffer-gb G]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/common/dtype.h"
#include "hwy/targets.h"
#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

// Best-of-reps streaming read of `bytes` with the pool: each task sums a contiguous 8 MiB
// chunk as 64-bit integers (integer adds vectorize without reassociation worries).
double read_bandwidth(herd::cpu::ThreadPool& pool, const uint64_t* data, size_t bytes,
                      double seconds) {
  const size_t words = bytes / 8, chunk = (8u << 20) / 8;
  const int64_t tasks = int64_t((words + chunk - 1) / chunk);
  std::vector<uint64_t> sums(static_cast<size_t>(tasks));
  double best = 0.0;
  const auto start = Clock::now();
  do {
    const auto t0 = Clock::now();
    pool.parallel_for(tasks, [&](int64_t t, int) {
      const uint64_t* p = data + size_t(t) * chunk;
      const size_t n = std::min(chunk, words - size_t(t) * chunk);
      uint64_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (size_t i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) s[j] += p[i + size_t(j)];
      sums[size_t(t)] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    });
    best = std::max(best, double(bytes) / seconds_since(t0) / 1e9);
  } while (seconds_since(start) < seconds);
  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  if (total == 42) std::printf(" ");  // keeps the sums observable
  return best;
}

struct LinearResult {
  double gbps, gflops;
};

// linear() on [n, k] x [o, k]^T bf16, weights rotated through `copies` buffers.
LinearResult bench_linear(herd::Backend& be, int64_t n, int64_t o, int64_t k,
                          std::vector<std::vector<uint16_t>>& weights, double seconds) {
  std::vector<float> x(size_t(n * k)), out(size_t(n * o));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (auto& v : x) v = dist(rng);
  herd::Tensor xt{x.data(), herd::DType::kF32, n, k}, ot{out.data(), herd::DType::kF32, n, o};
  double best = 1e30;
  size_t which = 0;
  const auto start = Clock::now();
  int iters = 0;
  do {
    herd::Tensor wt{weights[which].data(), herd::DType::kBF16, o, k};
    which = (which + 1) % weights.size();
    const auto t0 = Clock::now();
    be.linear(xt, wt, ot);
    best = std::min(best, seconds_since(t0));
    ++iters;
  } while (seconds_since(start) < seconds || iters < 3);
  const double bytes = double(o * k) * 2 + double(n * k + n * o) * 4;
  return {bytes / best / 1e9, 2.0 * double(n * o * k) / best / 1e9};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0;
  double seconds = 2.0, buffer_gb = 1.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--buffer-gb" && i + 1 < argc) {
      buffer_gb = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--buffer-gb G]\n", argv[0]);
      return 2;
    }
  }
  herd::cpu::ThreadPool pool(threads);
  auto be = herd::make_cpu_backend(threads);

  std::printf("command:");
  for (int i = 0; i < argc; ++i) std::printf(" %s", argv[i]);
  std::printf("\nmachine: %s, %d threads, SIMD target %s\n", cpu_model().c_str(), pool.size(),
              hwy::TargetName(hwy::SupportedAndGeneratedTargets().front()));

  const size_t bytes = size_t(buffer_gb * (1u << 30)) / 64 * 64;
  std::vector<uint64_t> buffer(bytes / 8);
  pool.parallel_for(64, [&](int64_t t, int) {  // first touch from the pool's threads
    const size_t per = buffer.size() / 64;
    for (size_t i = size_t(t) * per; i < (t == 63 ? buffer.size() : size_t(t + 1) * per); ++i)
      buffer[i] = i;
  });
  const double bw = read_bandwidth(pool, buffer.data(), bytes, seconds);
  std::printf("memory read bandwidth (streaming sum over %.2f GB): %.1f GB/s\n",
              double(bytes) / 1e9, bw);
  buffer = {};

  struct Case {
    int64_t o, k;
  };
  for (const Case c : {Case{2048, 8192}, Case{8192, 2048}}) {
    // Enough copies of the 32 MiB matrix to exceed any last-level cache (256 MiB in all).
    std::vector<std::vector<uint16_t>> weights(8, std::vector<uint16_t>(size_t(c.o * c.k)));
    for (size_t w = 0; w < weights.size(); ++w) {
      std::mt19937 rng(static_cast<uint32_t>(w));
      std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
      for (auto& v : weights[w]) v = herd::f32_to_bf16(dist(rng));
    }
    for (int64_t n : {1, 8, 128}) {
      const auto r = bench_linear(*be, n, c.o, c.k, weights, seconds);
      std::printf(
          "linear bf16 w[%lld x %lld] batch %3lld: %6.1f GB/s (%5.1f%% of read bandwidth), "
          "%6.1f GFLOP/s\n",
          (long long)c.o, (long long)c.k, (long long)n, r.gbps, 100.0 * r.gbps / bw, r.gflops);
    }
  }
  return 0;
}
