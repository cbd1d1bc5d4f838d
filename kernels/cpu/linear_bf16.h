// The BF16 GEMM of the CPU backend: AVX-512 BF16 dot products (vdpbf16ps, two bf16 products
// accumulated into an fp32 lane per instruction: twice the multiply-adds of an fp32 FMA) on
// weights packed once at load (issue 16).
//
// Numerics. The input rows are rounded to bf16 (round-to-nearest-even) once per call, the
// weights are bf16 already, and every sum is accumulated in fp32: the precision a BF16
// checkpoint gets in Hugging Face transformers, vLLM, llama.cpp and herd's CUDA backend.
// (The fp32-activation kernels of linear.cc remain for F32/F16 weights, for CPUs without
// AVX-512 BF16, and on request: HERD_CPU_MATMUL=fp32.)
//
// Batch invariance, by construction: out[r, j] is one fp32 chain over the k pairs in order
// 0, 1, 2, ... started from zero (the partial sums stored and reloaded between k-blocks are
// fp32, so exact). Neither the tile shape, the number of rows in the call, the row's position
// in the batch, nor the split over threads changes that chain, so a row's output is bitwise
// the same alone (decode) or in a batch of 128 (tests/kernels/linear_bf16_test.cc checks it).
//
// Packed layout: output columns in groups of 64 (4 vectors of 16 fp32 lanes); inside a group,
// for each k pair q, the 4 x 16 columns' (w[j, 2q], w[j, 2q+1]) pairs: 256 bytes, exactly the
// four vector operands the micro-kernel loads for that pair. A group is one sequential stream.
// Memory: ceil(out / 64) * 64 * ceil(in / 2) * 2 * 2 bytes, i.e. the weight's own size (plus
// padding for ragged shapes) in anonymous memory; the checkpoint's mmap stays the source of
// truth and its clean pages can be dropped by the kernel once packed. FP8 weights: the same
// layout with 1-byte codes (see pack_fp8_weight).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

namespace herd::cpu {

class ThreadPool;

// True when this CPU and OS run AVX-512 F/BW/VL and AVX-512 BF16 (cpuid + XCR0, checked by the
// compiler's runtime CPU detection).
bool bf16_gemm_supported();

// Whether a CPU backend made now runs BF16 weights on this kernel: HERD_CPU_MATMUL unset or
// "auto" -> bf16_gemm_supported(); "fp32" -> no (fp32 activations for every weight, linear.cc:
// closer to a float64 reference, about half the arithmetic peak). Any other value throws.
bool bf16_gemm_enabled();

struct PackedBf16Weight {
  static constexpr int64_t kGroupCols = 64;  // output columns per group (4 x 16 fp32 lanes)
  int64_t rows = 0;                          // out_features
  int64_t cols = 0;                          // in_features
  int64_t k_pairs = 0;                       // ceil(cols / 2)
  int64_t groups = 0;                        // ceil(rows / 64)
  // Row-wise FP8 weights keep their E4M3 codes (1 byte each, same layout: half the bytes to
  // stream) and are widened to bf16, exactly, one 16 KiB k-block at a time at run time.
  bool fp8 = false;
  std::unique_ptr<uint8_t[], void (*)(void*)> data{nullptr, nullptr};

  int64_t element_bytes() const { return fp8 ? 1 : 2; }
  size_t bytes() const { return size_t(groups * kGroupCols * k_pairs * 2 * element_bytes()); }
  const uint8_t* group(int64_t g) const {
    return data.get() + g * kGroupCols * k_pairs * 2 * element_bytes();
  }
};

// Packs w (bf16 bits, [rows, cols], rows `stride` elements apart: a tensor-parallel column
// slice is packed in place) into the layout above. Requires bf16_gemm_supported().
PackedBf16Weight pack_bf16_weight(ThreadPool& pool, const uint16_t* w, int64_t rows, int64_t cols,
                                  int64_t stride);

// The same for an F8E4M3 weight (codes, [rows, cols], `stride` apart). Throws herd::Error on a
// NaN code (quantizers never write one; the widening has no NaN path).
PackedBf16Weight pack_fp8_weight(ThreadPool& pool, const uint8_t* w, int64_t rows, int64_t cols,
                                 int64_t stride);

// out[r, j] = sum_i bf16(x[r, i]) * w[j, i], fp32 accumulation, r < n. x [n, w.cols] fp32,
// out [n, w.rows] fp32. For an FP8 weight w[j, i] is the code's E4M3 value (row scales are the
// caller's: linear_fp8 passes FP8-quantized x, whose values bf16 holds exactly, so every
// product is exact). Requires bf16_gemm_supported().
void linear_bf16_packed(ThreadPool& pool, const float* x, int64_t n, const PackedBf16Weight& w,
                        float* out);

// A fused projection (QKV, gate/up): outs[p][r, j] = sum_i bf16(x[r, i]) * ws[p][j, i] for every
// weight p (all of the same cols; outs[p] is [n, ws[p]->rows]). x is rounded to bf16 once, and
// every weight's column groups are scheduled as one parallel job; each output is bitwise what
// linear_bf16_packed gives for its weight alone.
void linear_bf16_packed_group(ThreadPool& pool, const float* x, int64_t n,
                              std::span<const PackedBf16Weight* const> ws,
                              std::span<float* const> outs);

// Row-wise FP8 on the packed kernel: each x row quantized once to E4M3 with its scale s_r
// (fp8_activation.h, cap act_scale_ub), then out[r, j] = (q_r . w_j) * s_r * row_scale[j].
// w from pack_fp8_weight.
void linear_fp8_packed(ThreadPool& pool, const float* x, int64_t n, const PackedBf16Weight& w,
                       const float* row_scale, float act_scale_ub, float* out);

// The fused form: one quantization of x (same cap for every weight) feeds every FP8 weight of
// the group; each output bitwise what linear_fp8_packed gives alone.
void linear_fp8_packed_group(ThreadPool& pool, const float* x, int64_t n,
                             std::span<const PackedBf16Weight* const> ws,
                             std::span<const float* const> row_scales, float act_scale_ub,
                             std::span<float* const> outs);

}  // namespace herd::cpu
