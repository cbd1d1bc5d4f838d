// FP8 vs BF16 linear on the GPU (issue 11): the feed-forward GEMMs of Llama 3 8B (whole) and of
// 405B per tensor-parallel rank at TP 8, at decode-sized and prefill-sized token counts.
// BF16 is cuBLASLt's BF16 GEMM (the backend's linear); FP8 is what the backend does for an FP8
// weight: per-token activation quantization (its own kernel) + cuBLASLt's FP8 GEMM with
// outer-vector scales. Each row prints both times, the FP8 speedup (the peer measured in the same
// run), and the figures next to the nominal H200 ceilings (BF16 989 / FP8 1979 dense TFLOP/s,
// 4.8 TB/s HBM3e) so that a decode row reads as bandwidth and a prefill row as compute.
// Random operands: the speed of a GEMM does not depend on the values.
//
//   bench_cuda_linear [--json FILE] [--min-ms 30]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/lt_matmul.h"

namespace {

using herd::cuda::LtMatmul;

struct Shape {
  const char* name;
  int64_t o, k;  // weight [o, k]
};

constexpr double kBf16PeakTflops = 989.0, kFp8PeakTflops = 1979.0, kHbmTBs = 4.8;

// Device buffer filled with pseudo-random bytes; for BF16 the bytes are masked to finite
// values of moderate size, for FP8 NaN codes are avoided.
void* random_buffer(size_t bytes, bool bf16, uint32_t seed) {
  std::vector<uint8_t> host(bytes);
  uint32_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < bytes; ++i) {
    s = s * 1664525u + 1013904223u;
    host[i] = uint8_t(s >> 24);
  }
  if (bf16) {
    for (size_t i = 1; i < bytes; i += 2) host[i] = uint8_t((host[i] & 0x80) | 0x3c);  // |v| < 1
  } else {
    for (auto& b : host)
      if ((b & 0x7f) == 0x7f) b ^= 1;
  }
  void* d = nullptr;
  HERD_CUDA_CHECK(cudaMalloc(&d, bytes));
  HERD_CUDA_CHECK(cudaMemcpy(d, host.data(), bytes, cudaMemcpyHostToDevice));
  return d;
}

// Mean microseconds of fn() on `stream`, repeated until min_ms have passed (at least 5 times)
// after 3 warm-up calls.
template <typename F>
double time_us(cudaStream_t stream, double min_ms, F fn) {
  for (int i = 0; i < 3; ++i) fn();
  cudaEvent_t a, b;
  HERD_CUDA_CHECK(cudaEventCreate(&a));
  HERD_CUDA_CHECK(cudaEventCreate(&b));
  int iters = 5;
  double ms = 0;
  for (;;) {
    HERD_CUDA_CHECK(cudaEventRecord(a, stream));
    for (int i = 0; i < iters; ++i) fn();
    HERD_CUDA_CHECK(cudaEventRecord(b, stream));
    HERD_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    HERD_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms = t;
    if (ms >= min_ms || iters >= 10000) break;
    iters = std::min(10000, iters * std::max(2, int(min_ms / std::max(ms, 0.01))));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms * 1000.0 / iters;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  double min_ms = 30;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) {
      json_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--min-ms") && i + 1 < argc) {
      min_ms = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_cuda_linear [--json FILE] [--min-ms 30]\n");
      return 2;
    }
  }
  std::string why;
  if (!herd::cuda_device_available(&why)) {
    std::printf("SKIP: no GPU to time on: %s\n", why.c_str());
    return 0;
  }
  cudaDeviceProp prop{};
  HERD_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("command: bench_cuda_linear --min-ms %g\nmachine: %s, %d SMs, %.0f GiB\n", min_ms,
              prop.name, prop.multiProcessorCount, double(prop.totalGlobalMem) / (1 << 30));
  std::printf("ceilings (nominal H200): BF16 %.0f TFLOP/s, FP8 %.0f TFLOP/s, HBM %.1f TB/s\n",
              kBf16PeakTflops, kFp8PeakTflops, kHbmTBs);

  const Shape shapes[] = {{"8b.gate_up", 14336, 4096},
                          {"8b.down", 4096, 14336},
                          {"405b.tp8.gate_up", 6656, 16384},
                          {"405b.tp8.down", 16384, 6656}};
  const int64_t tokens[] = {1, 16, 128, 1024, 4096};
  cudaStream_t stream;
  HERD_CUDA_CHECK(cudaStreamCreate(&stream));
  LtMatmul lt;
  std::ofstream json;
  if (!json_path.empty()) json.open(json_path);
  std::printf("%-18s %6s %10s %10s %10s %7s %9s %9s %8s %8s\n", "shape", "n", "bf16_us", "fp8_us",
              "quant_us", "speedup", "bf16_TF/s", "fp8_TF/s", "bf16_TB/s", "fp8_TB/s");
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    void* w16 = random_buffer(size_t(s.o * s.k) * 2, true, seed++);
    void* w8 = random_buffer(size_t(s.o * s.k), false, seed++);
    std::vector<float> ones(size_t(std::max<int64_t>(s.o, 4096)), 1.0f / 64);
    float* w_scale = nullptr;
    HERD_CUDA_CHECK(cudaMalloc(&w_scale, ones.size() * sizeof(float)));
    HERD_CUDA_CHECK(
        cudaMemcpy(w_scale, ones.data(), ones.size() * sizeof(float), cudaMemcpyHostToDevice));
    for (int64_t n : tokens) {
      void* x = random_buffer(size_t(n * s.k) * 2, true, seed++);
      void *xq = nullptr, *out = nullptr;
      float* x_scale = nullptr;
      HERD_CUDA_CHECK(cudaMalloc(&xq, size_t(n * s.k)));
      HERD_CUDA_CHECK(cudaMalloc(&x_scale, size_t(n) * sizeof(float)));
      HERD_CUDA_CHECK(cudaMalloc(&out, size_t(n * s.o) * 2));
      const double bf16_us =
          time_us(stream, min_ms, [&] { lt.run(x, n, s.k, w16, s.k, s.o, out, stream); });
      const double quant_us = time_us(stream, min_ms, [&] {
        herd::cuda::quantize_rows_e4m3(x, n, s.k, 1200.0f, xq, x_scale, stream);
      });
      const int64_t fallbacks_before = lt.fp8_fallbacks();
      const double fp8_us = time_us(stream, min_ms, [&] {
        herd::cuda::quantize_rows_e4m3(x, n, s.k, 1200.0f, xq, x_scale, stream);
        lt.run_fp8(xq, x_scale, n, s.k, w8, s.k, w_scale, s.o, out, stream);
      });
      const bool fallback = lt.fp8_fallbacks() != fallbacks_before;
      const double flop = 2.0 * double(n) * double(s.o) * double(s.k);
      // Bytes a perfect kernel must move: the weight, the activations in and the output out.
      const double bytes16 = double(s.o * s.k) * 2 + double(n * s.k) * 2 + double(n * s.o) * 2;
      const double bytes8 = double(s.o * s.k) + double(n * s.k) * 2 + double(n * s.o) * 2;
      const double bf16_tf = flop / bf16_us * 1e-6, fp8_tf = flop / fp8_us * 1e-6;
      const double bf16_tb = bytes16 / bf16_us * 1e-6, fp8_tb = bytes8 / fp8_us * 1e-6;
      std::printf("%-18s %6lld %10.1f %10.1f %10.1f %6.2fx %9.1f %9.1f %8.2f %8.2f%s\n", s.name,
                  static_cast<long long>(n), bf16_us, fp8_us, quant_us, bf16_us / fp8_us, bf16_tf,
                  fp8_tf, bf16_tb, fp8_tb, fallback ? "  (fp8 via fallback epilogue)" : "");
      if (json) {
        json << "{\"shape\":\"" << s.name << "\",\"o\":" << s.o << ",\"k\":" << s.k
             << ",\"n\":" << n << ",\"bf16_us\":" << bf16_us << ",\"fp8_us\":" << fp8_us
             << ",\"quant_us\":" << quant_us << ",\"speedup\":" << bf16_us / fp8_us
             << ",\"bf16_tflops\":" << bf16_tf << ",\"fp8_tflops\":" << fp8_tf
             << ",\"bf16_tbs\":" << bf16_tb << ",\"fp8_tbs\":" << fp8_tb
             << ",\"fp8_fallback\":" << (fallback ? "true" : "false") << "}\n";
      }
      cudaFree(x);
      cudaFree(xq);
      cudaFree(x_scale);
      cudaFree(out);
    }
    cudaFree(w16);
    cudaFree(w8);
    cudaFree(w_scale);
  }
  cudaStreamDestroy(stream);
  return 0;
}
