// bench_cpu_kernels: how close the CPU backend's linear() gets to the machine's memory-read
// bandwidth. Decode is memory-bound (every weight byte is read once per step), so the ceiling
// is the streaming-read bandwidth, measured here with the same thread pool and thread count.
// Weights are rotated through copies totalling well over the last-level cache so that each
// call really reads from DRAM.
//
// usage: bench_cpu_kernels [--threads N] [--seconds S] [--buffer-gb G]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "engine/common/dtype.h"
#include "kernels/backend.h"
#include "kernels/cpu/thread_pool.h"

namespace {

using herd::bench::Clock;
using herd::bench::seconds_since;

// Seconds of one linear() call on [n, k] x [o, k]^T bf16 weights.
double linear_pass(herd::Backend& be, const std::vector<float>& x, std::vector<float>& out,
                   int64_t n, int64_t o, int64_t k, std::vector<uint16_t>& w) {
  herd::Tensor xt{const_cast<float*>(x.data()), herd::DType::kF32, n, k};
  herd::Tensor ot{out.data(), herd::DType::kF32, n, o};
  herd::Tensor wt{w.data(), herd::DType::kBF16, o, k};
  const auto t0 = Clock::now();
  be.linear(xt, wt, ot);
  return seconds_since(t0);
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
  herd::cpu::ThreadPool pool(threads);  // same thread count as the backend's own pool
  auto be = herd::make_cpu_backend(threads);

  herd::bench::print_command_and_machine(argc, argv, pool.size());

  const std::vector<uint64_t> buffer =
      herd::bench::make_read_buffer(pool, size_t(buffer_gb * (1u << 30)));
  const size_t bytes = buffer.size() * 8;
  std::printf(
      "read bandwidth: streaming sum over a %.2f GB buffer, same threads; linear weights are\n"
      "rotated through 8 copies (256 MiB) so they come from DRAM. Both are best-of,\n"
      "measured alternately so that both see the same machine load.\n",
      double(bytes) / 1e9);

  struct Case {
    int64_t o, k;
  };
  for (const Case c : {Case{2048, 8192}, Case{8192, 2048}}) {
    std::vector<std::vector<uint16_t>> weights(8, std::vector<uint16_t>(size_t(c.o * c.k)));
    for (size_t w = 0; w < weights.size(); ++w) {
      std::mt19937 rng(static_cast<uint32_t>(w));
      std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
      for (auto& v : weights[w]) v = herd::f32_to_bf16(dist(rng));
    }
    for (int64_t n : {1, 8, 128}) {
      std::vector<float> x(size_t(n * c.k), 0.5f), out(size_t(n * c.o));
      double best_bw = 0.0, best_s = 1e30;
      size_t which = 0, piece = 0;
      const size_t piece_words = size_t(c.o * c.k) * 2 / 8, pieces = buffer.size() / piece_words;
      const auto start = Clock::now();
      do {
        // The sum reads the buffer in pieces as large as one weight matrix, so that the two
        // best-of figures are taken over intervals of the same length.
        for (int rep = 0; rep < 8; ++rep, piece = (piece + 1) % pieces) {
          best_bw = std::max(
              best_bw,
              herd::bench::read_pass(pool, buffer.data() + piece * piece_words, piece_words * 8));
        }
        for (int rep = 0; rep < 8; ++rep, which = (which + 1) % weights.size()) {
          best_s = std::min(best_s, linear_pass(*be, x, out, n, c.o, c.k, weights[which]));
        }
      } while (seconds_since(start) < seconds);
      const double gbps = (double(c.o * c.k) * 2 + double(n * (c.k + c.o)) * 4) / best_s / 1e9;
      std::printf(
          "linear bf16 w[%5lld x %5lld] batch %3lld: %6.1f GB/s of %5.1f GB/s read bandwidth "
          "(%5.1f%%), %6.1f GFLOP/s\n",
          (long long)c.o, (long long)c.k, (long long)n, gbps, best_bw, 100.0 * gbps / best_bw,
          2.0 * double(n * c.o * c.k) / best_s / 1e9);
    }
  }
  return 0;
}
