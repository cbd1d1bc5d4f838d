// The packed BF16 GEMM (see linear_bf16.h for the numerics and the layout).
//
// Why intrinsics and not Highway here: Debian's Highway 1.0.3 has no bf16 dot-product op (its
// ReorderWidenMulAccumulate covers int16 only; the bf16 form and the AVX3_ZEN4 / AVX3_SPR
// targets that emit vdpbf16ps came later). So this one kernel is written for AVX-512 BF16
// behind a run-time CPU check (bf16_gemm_supported); every other CPU runs linear.cc.
//
// Walk: a task owns one 64-column group and a range of input rows. For each k-block of 64
// pairs (the group's 16 KiB of packed weights, which stay in L1), every tile of up to 6 rows
// runs the 6 x 4-vector micro-kernel: per k pair, 4 vector loads of weights and one broadcast
// per row feed 24 dot-product instructions into 24 fp32 accumulators (of 32 registers).
#include "kernels/cpu/linear_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/common/error.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/thread_pool.h"

#define HERD_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
// The tile's accumulators must live in registers: its r/v loops are unrolled at any -O level.
#define HERD_UNROLL _Pragma("GCC unroll 16")

namespace herd::cpu {
namespace {

constexpr int kMR = 6;                  // input rows per micro-tile
constexpr int kNV = 4;                  // 16-lane output vectors per micro-tile (one group)
constexpr int64_t kKBlockPairs = 64;    // k pairs per block: 4 x 64 x 64 B = 16 KiB of weights
constexpr int64_t kPrefetchPairs = 16;  // software prefetch distance in the weight stream
constexpr int64_t kGroupU16 = PackedBf16Weight::kGroupCols * 2;  // u16 per k pair in a group

// out[r, group cols] (+)= sum over pairs [0, pairs) of the rows' bf16 pairs times the group's
// packed pairs. `first`: start from zero (k-block 0), else continue from out (fp32, exact).
// valid_cols < 64 only for the last group: the lanes past the matrix are computed on the
// zero padding and not stored.
template <int MR>
HERD_AVX512BF16 void Tile(const uint16_t* x, int64_t ldx, const uint16_t* wq, int64_t pairs,
                          float* out, int64_t ldo, int valid_cols, bool first, bool prefetch) {
  __mmask16 mask[kNV];
  HERD_UNROLL
  for (int v = 0; v < kNV; ++v) {
    const int n = std::clamp(valid_cols - 16 * v, 0, 16);
    mask[v] = __mmask16((1u << n) - 1u);
  }
  __m512 acc[MR][kNV];
  HERD_UNROLL
  for (int r = 0; r < MR; ++r) HERD_UNROLL
  for (int v = 0; v < kNV; ++v)
    acc[r][v] =
        first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], out + r * ldo + 16 * v);
  for (int64_t q = 0; q < pairs; ++q) {
    if (prefetch) {
      // 4 KiB ahead in the group's stream (into the next k-block near the end): without it the
      // weight reads of few-row tiles stall the arithmetic instead of overlapping it (batch 8
      // ran at ~30 GB/s; with it ~40, of ~60; 16 pairs measured best of 16/32/64/one block).
      const char* next = reinterpret_cast<const char*>(wq + (q + kPrefetchPairs) * kGroupU16);
      HERD_UNROLL
      for (int line = 0; line < 4; ++line) _mm_prefetch(next + 64 * line, _MM_HINT_T0);
    }
    __m512bh w[kNV];
    HERD_UNROLL
    for (int v = 0; v < kNV; ++v)
      w[v] = (__m512bh)_mm512_loadu_si512(static_cast<const void*>(wq + q * kGroupU16 + 32 * v));
    HERD_UNROLL
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, x + r * ldx + 2 * q, sizeof(pair));
      const __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
      HERD_UNROLL
      for (int v = 0; v < kNV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], xb, w[v]);
    }
  }
  HERD_UNROLL
  for (int r = 0; r < MR; ++r) HERD_UNROLL
  for (int v = 0; v < kNV; ++v) _mm512_mask_storeu_ps(out + r * ldo + 16 * v, mask[v], acc[r][v]);
}

HERD_AVX512BF16 void TileN(int mr, const uint16_t* x, int64_t ldx, const uint16_t* wq,
                           int64_t pairs, float* out, int64_t ldo, int valid_cols, bool first,
                           bool prefetch) {
  switch (mr) {
    case 1:
      return Tile<1>(x, ldx, wq, pairs, out, ldo, valid_cols, first, prefetch);
    case 2:
      return Tile<2>(x, ldx, wq, pairs, out, ldo, valid_cols, first, prefetch);
    case 3:
      return Tile<3>(x, ldx, wq, pairs, out, ldo, valid_cols, first, prefetch);
    case 4:
      return Tile<4>(x, ldx, wq, pairs, out, ldo, valid_cols, first, prefetch);
    case 5:
      return Tile<5>(x, ldx, wq, pairs, out, ldo, valid_cols, first, prefetch);
    default:
      return Tile<6>(x, ldx, wq, pairs, out, ldo, valid_cols, first, prefetch);
  }
}

// E4M3 codes -> the bf16 bits of the same value (exact: 4 exponent and 3 mantissa bits fit).
// Normal codes only re-bias the exponent (+120) and shift; the 8 subnormal magnitudes
// (m x 2^-9) come from a table. NaN codes never get here (pack_fp8_weight refuses them).
HERD_AVX512BF16 void WidenE4m3Block(const uint8_t* codes, int64_t count, uint16_t* out) {
  alignas(64) static const uint16_t kSubnormal[32] = {0x0000, 0x3B00, 0x3B80, 0x3BC0, 0x3C00,
                                                      0x3C20, 0x3C40, 0x3C60};  // m x 2^-9, m < 8
  const __m512i table = _mm512_load_si512(kSubnormal);
  const __m512i low7 = _mm512_set1_epi16(0x7F), sign_bit = _mm512_set1_epi16(0x80);
  const __m512i bias = _mm512_set1_epi16(120 << 7), eight = _mm512_set1_epi16(8);
  for (int64_t i = 0; i < count; i += 32) {  // count is a multiple of 128 (whole k pairs)
    _mm_prefetch(reinterpret_cast<const char*>(codes + i) + 4096, _MM_HINT_T0);
    const __m512i b =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + i)));
    const __m512i mag = _mm512_and_si512(b, low7);
    __m512i v = _mm512_add_epi16(_mm512_slli_epi16(mag, 4), bias);
    v = _mm512_mask_permutexvar_epi16(v, _mm512_cmplt_epu16_mask(mag, eight), mag, table);
    v = _mm512_or_si512(v, _mm512_slli_epi16(_mm512_and_si512(b, sign_bit), 8));
    _mm512_storeu_si512(out + i, v);
  }
}

// Groups [g_begin, g_end) for input rows [r_begin, r_end). k-block outermost: the rows' bf16
// k-block (at most 128 rows x 256 B) stays in L1/L2 while every group of the task uses it, so
// the input is read from far away once per task rather than once per group.
HERD_AVX512BF16 void GroupsRows(const uint16_t* xb, int64_t ldx, const PackedBf16Weight& w,
                                int64_t g_begin, int64_t g_end, int64_t r_begin, int64_t r_end,
                                float* out) {
  // FP8: each group's k-block is widened once into this L1-sized buffer, which every row tile
  // then reads like a packed bf16 block (so both weight types share one micro-kernel).
  alignas(64) uint16_t widened[kKBlockPairs * kGroupU16];
  for (int64_t q0 = 0; q0 < w.k_pairs; q0 += kKBlockPairs) {
    const int64_t pairs = std::min(kKBlockPairs, w.k_pairs - q0);
    for (int64_t g = g_begin; g < g_end; ++g) {
      const uint16_t* block;
      if (w.fp8) {
        WidenE4m3Block(w.group(g) + q0 * kGroupU16, pairs * kGroupU16, widened);
        block = widened;
      } else {
        block = reinterpret_cast<const uint16_t*>(w.group(g)) + q0 * kGroupU16;
      }
      const int64_t j0 = g * PackedBf16Weight::kGroupCols;
      const int valid = int(std::min<int64_t>(PackedBf16Weight::kGroupCols, w.rows - j0));
      for (int64_t r0 = r_begin; r0 < r_end; r0 += kMR) {
        TileN(int(std::min<int64_t>(kMR, r_end - r0)), xb + r0 * ldx + 2 * q0, ldx, block, pairs,
              out + r0 * w.rows + j0, w.rows, valid, q0 == 0, r0 == r_begin && !w.fp8);
      }
    }
  }
}

// Rows [r_begin, r_end) of x rounded to bf16 (RNE) into rows of ldx (even) u16, zero-padded.
HERD_AVX512BF16 void RoundRows(const float* x, int64_t cols, int64_t r_begin, int64_t r_end,
                               uint16_t* xb, int64_t ldx) {
  for (int64_t r = r_begin; r < r_end; ++r) {
    const float* src = x + r * cols;
    uint16_t* dst = xb + r * ldx;
    int64_t i = 0;
    for (; i + 16 <= cols; i += 16) {
      const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), (__m256i)h);
    }
    if (i < cols) {
      const __mmask16 m = __mmask16((1u << (cols - i)) - 1u);
      const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
      _mm256_mask_storeu_epi16(dst + i, m, (__m256i)h);
    }
    for (int64_t p = cols; p < ldx; ++p) dst[p] = 0;
  }
}

}  // namespace

bool bf16_gemm_supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bf16");
}

bool bf16_gemm_enabled() {
  const char* env = std::getenv("HERD_CPU_MATMUL");
  const std::string mode = env ? env : "";
  if (mode == "fp32") return false;
  if (!mode.empty() && mode != "auto")
    throw Error("HERD_CPU_MATMUL must be 'auto' or 'fp32', got '" + mode + "'");
  return bf16_gemm_supported();
}

namespace {

// Element (j, i) goes to group j / 64, pair i / 2, vector (j % 64) / 16, lane j % 16, half
// i % 2; columns past `rows` and the odd column's partner are zero.
template <class T>
PackedBf16Weight Pack(ThreadPool& pool, const T* w, int64_t rows, int64_t cols, int64_t stride) {
  PackedBf16Weight p;
  p.rows = rows;
  p.cols = cols;
  p.k_pairs = (cols + 1) / 2;
  p.groups = (rows + PackedBf16Weight::kGroupCols - 1) / PackedBf16Weight::kGroupCols;
  p.fp8 = sizeof(T) == 1;
  const size_t bytes = std::max<size_t>(p.bytes(), 64);
  p.data = {static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)), std::free};
  if (!p.data) throw std::bad_alloc();
  pool.parallel_for(p.groups, [&](int64_t g, int) {
    T* dst = reinterpret_cast<T*>(p.data.get()) + g * kGroupU16 * p.k_pairs;
    for (int64_t c = 0; c < PackedBf16Weight::kGroupCols; ++c) {
      const int64_t j = g * PackedBf16Weight::kGroupCols + c;
      T* col = dst + (c / 16) * 32 + (c % 16) * 2;
      for (int64_t q = 0; q < p.k_pairs; ++q) {
        const int64_t i = 2 * q;
        col[q * kGroupU16] = j < rows ? w[j * stride + i] : T(0);
        col[q * kGroupU16 + 1] = j < rows && i + 1 < cols ? w[j * stride + i + 1] : T(0);
      }
    }
  });
  return p;
}

}  // namespace

PackedBf16Weight pack_bf16_weight(ThreadPool& pool, const uint16_t* w, int64_t rows, int64_t cols,
                                  int64_t stride) {
  return Pack(pool, w, rows, cols, stride);
}

PackedBf16Weight pack_fp8_weight(ThreadPool& pool, const uint8_t* w, int64_t rows, int64_t cols,
                                 int64_t stride) {
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t i = 0; i < cols; ++i)
      if ((w[j * stride + i] & 0x7F) == 0x7F)
        throw Error("FP8 weight [" + std::to_string(rows) + ", " + std::to_string(cols) +
                    "] holds a NaN code at row " + std::to_string(j) + ", column " +
                    std::to_string(i));
  return Pack(pool, w, rows, cols, stride);
}

void linear_bf16_packed_group(ThreadPool& pool, const float* x, int64_t n,
                              std::span<const PackedBf16Weight* const> ws,
                              std::span<float* const> outs) {
  if (n <= 0 || ws.empty()) return;
  const int64_t cols = ws[0]->cols;
  for (const PackedBf16Weight* w : ws)
    if (w->cols != cols)
      throw Error("linear_bf16_packed_group: weights of " + std::to_string(w->cols) + " and " +
                  std::to_string(cols) + " input columns cannot share one input");
  int64_t total_groups = 0;
  for (const PackedBf16Weight* w : ws) total_groups += w->groups;
  if (total_groups == 0) return;  // only empty weights: no output columns to compute
  const int64_t ldx = 2 * ws[0]->k_pairs;
  thread_local std::vector<uint16_t> xb_store;
  xb_store.resize(size_t(n * ldx));
  uint16_t* xb = xb_store.data();
  // One rounding of the input for every weight of the group.
  const int64_t round_tasks = std::min<int64_t>(n, 4 * pool.size());
  pool.parallel_for(round_tasks, [&](int64_t t, int) {
    RoundRows(x, cols, t * n / round_tasks, (t + 1) * n / round_tasks, xb, ldx);
  });
  // Tasks: runs of up to 4 groups of one weight (they share the input's k-blocks), as many runs
  // over all the weights as keep each thread busy with a few tasks; when groups alone cannot,
  // the rows split too (a whole number of micro-tiles per task). Outputs do not depend on any
  // of it (see the header).
  const int64_t threads = pool.size();
  const int64_t run = std::clamp<int64_t>(total_groups / (4 * threads), 1, 4);
  struct Run {
    int part;
    int64_t g_begin, g_end;
  };
  thread_local std::vector<Run> runs;
  runs.clear();
  for (size_t p = 0; p < ws.size(); ++p)
    for (int64_t g = 0; g < ws[p]->groups; g += run)
      runs.push_back({int(p), g, std::min(ws[p]->groups, g + run)});
  const int64_t num_runs = int64_t(runs.size());
  int64_t row_chunks = 1;
  if (num_runs < 4 * threads && n > kMR) {
    row_chunks = std::min((4 * threads + num_runs - 1) / num_runs, (n + kMR - 1) / kMR);
  }
  const int64_t rows_per_chunk = ((n + row_chunks - 1) / row_chunks + kMR - 1) / kMR * kMR;
  row_chunks = (n + rows_per_chunk - 1) / rows_per_chunk;
  const Run* run_list = runs.data();
  pool.parallel_for(num_runs * row_chunks, [&](int64_t task, int) {
    const Run& r = run_list[task / row_chunks];
    const int64_t r0 = task % row_chunks * rows_per_chunk;
    GroupsRows(xb, ldx, *ws[size_t(r.part)], r.g_begin, r.g_end, r0,
               std::min(n, r0 + rows_per_chunk), outs[size_t(r.part)]);
  });
}

void linear_bf16_packed(ThreadPool& pool, const float* x, int64_t n, const PackedBf16Weight& w,
                        float* out) {
  const PackedBf16Weight* ws[] = {&w};
  float* outs[] = {out};
  linear_bf16_packed_group(pool, x, n, ws, outs);
}

void linear_fp8_packed_group(ThreadPool& pool, const float* x, int64_t n,
                             std::span<const PackedBf16Weight* const> ws,
                             std::span<const float* const> row_scales, float act_scale_ub,
                             std::span<float* const> outs) {
  if (n <= 0 || ws.empty()) return;
  const int64_t cols = ws[0]->cols;
  thread_local std::vector<float> q, scale;
  q.resize(size_t(n * cols));
  scale.resize(size_t(n));
  float* qd = q.data();
  float* sd = scale.data();
  // The token scales depend only on x and the cap: one quantization serves every weight.
  quantize_rows_fp8(pool, x, n, cols, act_scale_ub, qd, sd);
  linear_bf16_packed_group(pool, qd, n, ws, outs);
  pool.parallel_for(n, [&](int64_t r, int) {
    for (size_t p = 0; p < ws.size(); ++p) {
      const int64_t m = ws[p]->rows;
      const float* rs = row_scales[p];
      float* o = outs[p] + r * m;
      for (int64_t j = 0; j < m; ++j) o[j] = o[j] * sd[r] * rs[j];
    }
  });
}

void linear_fp8_packed(ThreadPool& pool, const float* x, int64_t n, const PackedBf16Weight& w,
                       const float* row_scale, float act_scale_ub, float* out) {
  const PackedBf16Weight* ws[] = {&w};
  const float* scales[] = {row_scale};
  float* outs[] = {out};
  linear_fp8_packed_group(pool, x, n, ws, scales, act_scale_ub, outs);
}

}  // namespace herd::cpu
