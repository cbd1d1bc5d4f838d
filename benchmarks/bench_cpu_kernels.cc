// bench_cpu_kernels: how close the CPU backend's linear() gets to the machine's ceilings.
// Decode (batch 1 and 8) is memory-bound: every weight byte is read once per step, so the
// ceiling is the streaming-read bandwidth, measured here with the same thread pool and thread
// count; weights are rotated through copies totalling well over the last-level cache so that
// each call really reads from DRAM. Batch 128 is compute-bound: its ceiling is the BF16
// dot-product peak (vdpbf16ps), measured in the same run by a register-only loop on every
// thread (and the fp32 FMA peak next to it, the ceiling of the fp32-activation kernel).
// Both kernels run on the same weights: "fp32" = linear.cc (fp32 activations, weights widened
// in registers), "bf16" = the packed AVX-512 BF16 GEMM of linear_bf16.h (weights packed once).
// Last, the bf16 kernel on a weight resident in L2: its arithmetic rate alone at each batch.
//
// usage: bench_cpu_kernels [--threads N] [--seconds S] [--buffer-gb G]
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "engine/common/dtype.h"
#include "kernels/backend.h"
#include "kernels/cpu/linear_bf16.h"
#include "kernels/cpu/thread_pool.h"

namespace {

using herd::bench::Clock;
using herd::bench::seconds_since;

// Seconds of one linear() call on [n, k] x [o, k]^T bf16 weights.
double linear_pass(herd::Backend& be, const std::vector<float>& x, std::vector<float>& out,
                   int64_t n, int64_t o, int64_t k, const herd::Tensor& wt) {
  herd::Tensor xt{const_cast<float*>(x.data()), herd::DType::kF32, n, k};
  herd::Tensor ot{out.data(), herd::DType::kF32, n, o};
  const auto t0 = Clock::now();
  be.linear(xt, wt, ot);
  return seconds_since(t0);
}

// Register-only loops: 12 independent accumulator chains (more than latency x throughput on
// current cores), no memory operands; `iters` steps of 12 instructions of 16 lanes.
#define HERD_PEAK_TARGET __attribute__((target("avx512f,avx512bf16")))
// (Not _mm512_reduce_add_ps: GCC 12 warns on its internal _mm256_undefined_pd.)
HERD_PEAK_TARGET float lane_sum(const __m512 (&a)[12]) {
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return sum;
}
HERD_PEAK_TARGET float bf16_dot_loop(int64_t iters) {
  __m512 a[12];
  for (auto& v : a) v = _mm512_setzero_ps();
  __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0);
  for (int64_t t = 0; t < iters; ++t) {
    for (auto& v : a) v = _mm512_dpbf16_ps(v, x, y);
    __asm__ volatile("" : "+v"(x));  // keeps the loop from being folded
  }
  return lane_sum(a);
}
HERD_PEAK_TARGET float fp32_fma_loop(int64_t iters) {
  __m512 a[12];
  for (auto& v : a) v = _mm512_setzero_ps();
  __m512 x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(0.0f);
  for (int64_t t = 0; t < iters; ++t) {
    for (auto& v : a) v = _mm512_fmadd_ps(x, y, v);
    __asm__ volatile("" : "+v"(x));
  }
  return lane_sum(a);
}

// Best-of GFLOP/s of `loop` run on every pool thread at once (flops per step per thread given).
double peak_gflops(herd::cpu::ThreadPool& pool, float (*loop)(int64_t), double flops_per_iter) {
  const int64_t iters = 20'000'000;
  std::atomic<float> sink{0.0f};
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    pool.parallel_for(pool.size(), [&](int64_t, int) { sink.store(loop(iters)); });
    best = std::max(best,
                    double(pool.size()) * double(iters) * flops_per_iter / seconds_since(t0) / 1e9);
  }
  return best;
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

  const bool has_bf16 = herd::cpu::bf16_gemm_supported();
  double bf16_peak = 0.0, fp32_peak = 0.0;
  if (has_bf16) {
    bf16_peak = peak_gflops(pool, bf16_dot_loop, 12.0 * 64);
    fp32_peak = peak_gflops(pool, fp32_fma_loop, 12.0 * 32);
    std::printf(
        "peak (register-only loops, %d threads): bf16 dot product %.1f GFLOP/s, fp32 FMA "
        "%.1f GFLOP/s\n",
        pool.size(), bf16_peak, fp32_peak);
  } else {
    std::printf("this CPU has no AVX-512 BF16: only the fp32 kernel runs, no compute peak\n");
  }

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
    // The same 8 weights, also prepared (packed) on a second backend for the bf16 kernel.
    std::vector<herd::Tensor> views;
    for (auto& w : weights) views.push_back(herd::Tensor{w.data(), herd::DType::kBF16, c.o, c.k});
    auto packed_be = herd::make_cpu_backend(threads);
    for (const auto& v : views) packed_be->prepare_linear(v);
    for (int64_t n : {1, 8, 128}) {
      std::vector<float> x(size_t(n * c.k)), out(size_t(n * c.o));
      std::mt19937 rng(7);
      std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
      for (float& v : x) v = dist(rng);
      double best_bw = 0.0, best_fp32 = 1e30, best_bf16 = 1e30;
      size_t which = 0, piece = 0;
      const size_t piece_words = size_t(c.o * c.k) * 2 / 8, pieces = buffer.size() / piece_words;
      const auto start = Clock::now();
      do {
        // The sum reads the buffer in pieces as large as one weight matrix, so that the
        // best-of figures are taken over intervals of the same length.
        for (int rep = 0; rep < 8; ++rep, piece = (piece + 1) % pieces) {
          best_bw = std::max(
              best_bw,
              herd::bench::read_pass(pool, buffer.data() + piece * piece_words, piece_words * 8));
        }
        for (int rep = 0; rep < 8; ++rep, which = (which + 1) % weights.size()) {
          best_fp32 = std::min(best_fp32, linear_pass(*be, x, out, n, c.o, c.k, views[which]));
          if (has_bf16)
            best_bf16 =
                std::min(best_bf16, linear_pass(*packed_be, x, out, n, c.o, c.k, views[which]));
        }
      } while (seconds_since(start) < seconds);
      for (const auto& [name, best_s] :
           {std::pair{"fp32", best_fp32}, std::pair{"bf16", best_bf16}}) {
        if (best_s >= 1e30) continue;
        const double gbps = (double(c.o * c.k) * 2 + double(n * (c.k + c.o)) * 4) / best_s / 1e9;
        const double gflops = 2.0 * double(n * c.o * c.k) / best_s / 1e9;
        std::printf(
            "linear %s w[%5lld x %5lld] batch %3lld: %6.1f GB/s of %5.1f GB/s read bandwidth "
            "(%5.1f%%), %6.1f GFLOP/s",
            name, (long long)c.o, (long long)c.k, (long long)n, gbps, best_bw,
            100.0 * gbps / best_bw, gflops);
        if (bf16_peak > 0) std::printf(" (%5.1f%% of bf16 peak)", 100.0 * gflops / bf16_peak);
        std::printf("\n");
      }
    }
  }
  if (has_bf16) {
    // The arithmetic side alone: the bf16 kernel on one small weight that stays in L2 (256 KiB
    // of it per thread), called over and over. Its rate at batch n, as bytes of weights per
    // second, is what the kernel could stream if memory were free; when it is not far above
    // the read bandwidth, a DRAM-bound call can only reach the bandwidth by overlapping the
    // two completely (time = max), and gets about 1 / (1/bw + 1/this) when it does not.
    const int64_t o = 256, k = 2048;
    std::vector<uint16_t> w(size_t(o * k));
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
    for (auto& v : w) v = herd::f32_to_bf16(dist(rng));
    const herd::Tensor view{w.data(), herd::DType::kBF16, o, k};
    auto l2_be = herd::make_cpu_backend(threads);
    l2_be->prepare_linear(view);
    std::printf("bf16 kernel on weights resident in L2 (w[%lld x %lld], the same call repeated):\n",
                (long long)o, (long long)k);
    for (int64_t n : {1, 8, 128}) {
      std::vector<float> x(size_t(n * k), 0.5f), out(size_t(n * o));
      double best = 1e30;
      const auto start = Clock::now();
      do {
        for (int rep = 0; rep < 100; ++rep)
          best = std::min(best, linear_pass(*l2_be, x, out, n, o, k, view));
      } while (seconds_since(start) < seconds / 4);
      const double gflops = 2.0 * double(n * o * k) / best / 1e9;
      std::printf("  batch %3lld: %6.1f GFLOP/s (%5.1f%% of bf16 peak) = %6.1f GB/s of weights\n",
                  (long long)n, gflops, 100.0 * gflops / bf16_peak, double(o * k) * 2 / best / 1e9);
    }
  }
  return 0;
}
