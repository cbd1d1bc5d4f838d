// linear(): out = x * w^T with fp32 accumulation, the op that dominates every forward pass.
//
// The weight may be strided (w_stride elements between rows, >= in_features): a column slice
// of a larger matrix (a tensor-parallel shard) is read in place.
//
// Decode (up to 8 input rows) is bound by reading the weights from memory: each task owns a
// range of weight rows and reads each weight byte once, with a register tile of up to 4 input
// rows x 2-4 weight rows so that each load feeds several FMAs, k-unrolled when the tile is
// small (bf16/f16 widened to fp32 in registers). See DecodeRange for the walk order.
// Prefill (more rows) is bound by arithmetic: each task widens a k-slice of its weight rows
// into k-major panels once and runs a register-blocked GEMM micro-kernel (6 rows x 2 vectors
// of outputs, broadcast-FMA, no horizontal sums) over every input row.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/fp8_activation.h"
#include "kernels/cpu/thread_pool.h"

// Highway's per-target re-inclusion needs exactly this include order.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/linear.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/cpu/load_widen-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace herd::cpu::HWY_NAMESPACE {

// ---- decode: stream each weight row once --------------------------------------------------

// AVX-512 has 32 vector registers: 4x4 accumulators fit; elsewhere 4x2.
#if HWY_TARGET <= HWY_AVX3
constexpr int kDecodeNW = 4;
#else
constexpr int kDecodeNW = 2;
#endif
constexpr int kDecodeNR = 4;

// res[r * NW + j] = dot(x row r, w row j) over len elements, for NR input rows (stride ldx)
// and NW weight rows (stride ldw): each widened weight vector serves NR rows and each input
// vector NW weight rows; U-way unrolling along k keeps at least 4 FMA chains in flight.
template <int NR, int NW, class W>
HWY_INLINE void DotTile(const float* HWY_RESTRICT x, int64_t ldx,
                        const typename W::T* HWY_RESTRICT w, int64_t ldw, int64_t len,
                        float* HWY_RESTRICT res) {
  constexpr int U = NR * NW >= 4 ? 1 : 4 / (NR * NW);
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const int64_t lanes = int64_t(hn::Lanes(df));
  V acc[NR][NW * U];
  for (int r = 0; r < NR; ++r)
    for (int j = 0; j < NW * U; ++j) acc[r][j] = hn::Zero(df);
  int64_t i = 0;
  for (; i + U * lanes <= len; i += U * lanes) {
    for (int u = 0; u < U; ++u) {
      V wv[NW];
      for (int j = 0; j < NW; ++j) wv[j] = LoadWidened<W>(df, w + j * ldw + i + u * lanes);
      for (int r = 0; r < NR; ++r) {
        const V xv = hn::LoadU(df, x + r * ldx + i + u * lanes);
        for (int j = 0; j < NW; ++j) acc[r][u * NW + j] = hn::MulAdd(xv, wv[j], acc[r][u * NW + j]);
      }
    }
  }
  for (; i + lanes <= len; i += lanes) {
    for (int j = 0; j < NW; ++j) {
      const V wv = LoadWidened<W>(df, w + j * ldw + i);
      for (int r = 0; r < NR; ++r)
        acc[r][j] = hn::MulAdd(hn::LoadU(df, x + r * ldx + i), wv, acc[r][j]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int j = 0; j < NW; ++j) {
      V sum_v = acc[r][j];
      for (int u = 1; u < U; ++u) sum_v = hn::Add(sum_v, acc[r][u * NW + j]);
      float sum = hn::GetLane(hn::SumOfLanes(df, sum_v));
      for (int64_t t = i; t < len; ++t) sum += x[r * ldx + t] * LoadScalar<W>(w + j * ldw + t);
      res[r * NW + j] = sum;
    }
  }
}

// Weight rows [j, j + NW) against input rows [0, n), k-slice [k0, k0 + len).
template <int NW, class W>
HWY_INLINE void DecodeStrip(const float* x, int64_t n, int64_t k, const typename W::T* w,
                            int64_t ldw, int64_t len, float* out, int64_t ldo, bool accumulate) {
  float res[kDecodeNR * NW];
  for (int64_t r0 = 0; r0 < n; r0 += kDecodeNR) {
    const int nr = int(std::min<int64_t>(kDecodeNR, n - r0));
    const float* xr = x + r0 * k;
    switch (nr) {
      case 1:
        DotTile<1, NW, W>(xr, k, w, ldw, len, res);
        break;
      case 2:
        DotTile<2, NW, W>(xr, k, w, ldw, len, res);
        break;
      case 3:
        DotTile<3, NW, W>(xr, k, w, ldw, len, res);
        break;
      default:
        DotTile<4, NW, W>(xr, k, w, ldw, len, res);
        break;
    }
    for (int r = 0; r < nr; ++r) {
      for (int c = 0; c < NW; ++c) {
        float& o = out[(r0 + r) * ldo + c];
        o = accumulate ? o + res[r * NW + c] : res[r * NW + c];
      }
    }
  }
}

constexpr int64_t kDecodeMaxRows = 8;  // up to here the decode path; beyond, the GEMM

// Weight rows [j_begin, j_end) against all n <= 8 input rows. For n > 1, k is cut in slices
// whose input rows stay in L1 (about 16 KiB of x) so that only the weights come from memory;
// every weight byte is still read exactly once.
template <class W>
void DecodeRange(const float* x, int64_t n, int64_t k, const typename W::T* w, int64_t ldw,
                 int64_t out_features, int64_t j_begin, int64_t j_end, float* out) {
  // One input row: no slicing (x is small next to the weights, and slicing would turn the
  // weight stream into strided pieces). Up to 4K columns the rows are then walked one at a
  // time as a single sequential stream; longer rows go 4 at a time (measured faster on Zen 4:
  // the 32 KiB x row then competes with the weights for L1 either way).
  const int64_t slice = n == 1 ? k : std::max<int64_t>(512, 4096 / n / 64 * 64);
  const bool single_stream = n == 1 && k <= 4096;
  for (int64_t k0 = 0; k0 < k; k0 += slice) {
    const int64_t len = std::min(slice, k - k0);
    int64_t j = j_begin;
    if (single_stream) {
      for (; j < j_end; ++j) {
        DecodeStrip<1, W>(x + k0, n, k, w + j * ldw + k0, ldw, len, out + j, out_features, k0 > 0);
      }
    }
    for (; j + kDecodeNW <= j_end; j += kDecodeNW) {
      DecodeStrip<kDecodeNW, W>(x + k0, n, k, w + j * ldw + k0, ldw, len, out + j, out_features,
                                k0 > 0);
    }
    for (; j < j_end; ++j) {
      DecodeStrip<1, W>(x + k0, n, k, w + j * ldw + k0, ldw, len, out + j, out_features, k0 > 0);
    }
  }
}

// ---- prefill: packed GEMM -------------------------------------------------------------------

constexpr int64_t kKBlock = 128;  // k-slice: one packed panel (kKBlock x 2 vectors) fits L1
constexpr int kMR = 6;            // input rows per micro-tile: 12 accumulators + 3 temps

// Widens w[j_begin + c, k0 + kk] (c < cols, kk < len) into panels of 2 * lanes columns laid
// out k-major: panel p holds, for each kk, the 2 * lanes values of its columns (zero past
// the last column). The micro-kernel then reads each panel sequentially.
template <class W>
void PackPanels(const typename W::T* w, int64_t ldw, int64_t j_begin, int64_t cols, int64_t k0,
                int64_t len, int64_t panel_width, float* packed) {
  const int64_t panels = (cols + panel_width - 1) / panel_width;
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = packed + p * len * panel_width;
    for (int64_t c = 0; c < panel_width; ++c) {
      const int64_t col = p * panel_width + c;
      if (col >= cols) {
        for (int64_t kk = 0; kk < len; ++kk) dst[kk * panel_width + c] = 0.0f;
        continue;
      }
      const typename W::T* src = w + (j_begin + col) * ldw + k0;
      for (int64_t kk = 0; kk < len; ++kk) dst[kk * panel_width + c] = LoadScalar<W>(src + kk);
    }
  }
}

// out[r, 0 .. 2*lanes) (+)= sum_kk x[r, kk] * panel[kk, :] for MR rows; `cols` < 2 * lanes
// only for the last panel, which then goes through a small buffer.
template <int MR>
HWY_INLINE void MicroKernel(const float* HWY_RESTRICT x, int64_t ldx,
                            const float* HWY_RESTRICT panel, int64_t len, float* out, int64_t ldo,
                            int64_t cols, bool accumulate) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const int64_t lanes = int64_t(hn::Lanes(df));
  V c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = hn::Zero(df);
  for (int64_t kk = 0; kk < len; ++kk) {
    const V b0 = hn::LoadU(df, panel + kk * 2 * lanes);
    const V b1 = hn::LoadU(df, panel + kk * 2 * lanes + lanes);
    for (int r = 0; r < MR; ++r) {
      const V a = hn::Set(df, x[r * ldx + kk]);
      c0[r] = hn::MulAdd(a, b0, c0[r]);
      c1[r] = hn::MulAdd(a, b1, c1[r]);
    }
  }
  if (cols == 2 * lanes) {
    for (int r = 0; r < MR; ++r) {
      float* o = out + r * ldo;
      if (accumulate) {
        c0[r] = hn::Add(c0[r], hn::LoadU(df, o));
        c1[r] = hn::Add(c1[r], hn::LoadU(df, o + lanes));
      }
      hn::StoreU(c0[r], df, o);
      hn::StoreU(c1[r], df, o + lanes);
    }
    return;
  }
  HWY_ALIGN float tmp[2 * HWY_MAX_BYTES / sizeof(float)];
  for (int r = 0; r < MR; ++r) {
    hn::StoreU(c0[r], df, tmp);
    hn::StoreU(c1[r], df, tmp + lanes);
    float* o = out + r * ldo;
    for (int64_t c = 0; c < cols; ++c) o[c] = accumulate ? o[c] + tmp[c] : tmp[c];
  }
}

HWY_INLINE void MicroKernelN(int mr, const float* x, int64_t ldx, const float* panel, int64_t len,
                             float* out, int64_t ldo, int64_t cols, bool accumulate) {
  switch (mr) {
    case 1:
      return MicroKernel<1>(x, ldx, panel, len, out, ldo, cols, accumulate);
    case 2:
      return MicroKernel<2>(x, ldx, panel, len, out, ldo, cols, accumulate);
    case 3:
      return MicroKernel<3>(x, ldx, panel, len, out, ldo, cols, accumulate);
    case 4:
      return MicroKernel<4>(x, ldx, panel, len, out, ldo, cols, accumulate);
    case 5:
      return MicroKernel<5>(x, ldx, panel, len, out, ldo, cols, accumulate);
    default:
      return MicroKernel<6>(x, ldx, panel, len, out, ldo, cols, accumulate);
  }
}

// Columns [j_begin, j_end) of out for all n rows: per k-slice, widen and pack the task's
// weights once (the only pass over them), then sweep every input row over each panel.
template <class W>
void GemmRange(const float* x, int64_t n, int64_t k, const typename W::T* w, int64_t ldw,
               int64_t out_features, int64_t j_begin, int64_t j_end, float* out) {
  const hn::ScalableTag<float> df;
  const int64_t panel_width = 2 * int64_t(hn::Lanes(df));
  const int64_t cols = j_end - j_begin;
  const int64_t panels = (cols + panel_width - 1) / panel_width;
  thread_local std::vector<float> packed;
  packed.resize(size_t(panels * panel_width * kKBlock));
  for (int64_t k0 = 0; k0 < k; k0 += kKBlock) {
    const int64_t len = std::min(kKBlock, k - k0);
    PackPanels<W>(w, ldw, j_begin, cols, k0, len, panel_width, packed.data());
    for (int64_t p = 0; p < panels; ++p) {
      const float* panel = packed.data() + p * len * panel_width;
      const int64_t j = j_begin + p * panel_width;
      const int64_t pc = std::min(panel_width, j_end - j);
      for (int64_t r0 = 0; r0 < n; r0 += kMR) {
        MicroKernelN(int(std::min<int64_t>(kMR, n - r0)), x + r0 * k + k0, k, panel, len,
                     out + r0 * out_features + j, out_features, pc, k0 > 0);
      }
    }
  }
}

template <class W>
void LinearRangeT(const float* x, int64_t n, int64_t k, const typename W::T* w, int64_t ldw,
                  int64_t out_features, int64_t j_begin, int64_t j_end, float* out) {
  if (n <= kDecodeMaxRows) {
    DecodeRange<W>(x, n, k, w, ldw, out_features, j_begin, j_end, out);
  } else {
    GemmRange<W>(x, n, k, w, ldw, out_features, j_begin, j_end, out);
  }
}

// Output columns [j_begin, j_end) of out for all n rows.
void LinearRange(const float* x, int64_t n, int64_t k, const void* w, int64_t ldw, DType w_dtype,
                 int64_t out_features, int64_t j_begin, int64_t j_end, float* out) {
  switch (w_dtype) {
    case DType::kBF16:
      return LinearRangeT<BF16W>(x, n, k, static_cast<const hwy::bfloat16_t*>(w), ldw, out_features,
                                 j_begin, j_end, out);
    case DType::kF16:
      return LinearRangeT<F16W>(x, n, k, static_cast<const hwy::float16_t*>(w), ldw, out_features,
                                j_begin, j_end, out);
    case DType::kF8E4M3:
      return LinearRangeT<F8W>(x, n, k, static_cast<const uint8_t*>(w), ldw, out_features, j_begin,
                               j_end, out);
    default:
      return LinearRangeT<F32W>(x, n, k, static_cast<const float*>(w), ldw, out_features, j_begin,
                                j_end, out);
  }
}

}  // namespace herd::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace herd::cpu {

HWY_EXPORT(LinearRange);

namespace {

// Output rows per task. Decode: small enough that every thread gets several tasks (the dynamic
// hand-out evens them out), large enough to amortize the hand-out. Prefill: 64 columns (a whole
// number of panels for every vector width up to 512 bits).
int64_t task_block(int64_t n, int64_t out_features, int64_t threads) {
  if (n > 8) return 64;
  const int64_t block = (out_features + threads * 8 - 1) / (threads * 8);
  return std::clamp<int64_t>((block + 3) / 4 * 4, 4, 256);
}

}  // namespace

void linear(ThreadPool& pool, const float* x, int64_t n, int64_t in_features, const void* w,
            int64_t w_stride, DType w_dtype, int64_t out_features, float* out) {
  const int64_t block = task_block(n, out_features, pool.size());
  const int64_t tasks = (out_features + block - 1) / block;
  auto* range = HWY_DYNAMIC_DISPATCH(LinearRange);
  pool.parallel_for(tasks, [&](int64_t task, int) {
    const int64_t j0 = task * block;
    range(x, n, in_features, w, w_stride, w_dtype, out_features, j0,
          std::min(j0 + block, out_features), out);
  });
}

void quantize_rows_fp8(ThreadPool& pool, const float* x, int64_t n, int64_t k, float act_scale_ub,
                       float* q, float* scale) {
  pool.parallel_for(n, [&](int64_t r, int) {
    scale[r] = quantize_row_fp8(x + r * k, k, act_scale_ub, q + r * k);
  });
}

void linear_fp8(ThreadPool& pool, const float* x, int64_t n, int64_t in_features, const uint8_t* w,
                int64_t w_stride, const float* row_scale, float act_scale_ub, int64_t out_features,
                float* out) {
  // Quantize each token once (not once per task): the FP8 values, exact in fp32, then go
  // through the same decode / GEMM paths as any weight, the weight widened from FP8.
  thread_local std::vector<float> q;
  thread_local std::vector<float> scale;
  q.resize(size_t(n * in_features));
  scale.resize(size_t(n));
  float* qd = q.data();
  float* sd = scale.data();
  quantize_rows_fp8(pool, x, n, in_features, act_scale_ub, qd, sd);
  const int64_t block = task_block(n, out_features, pool.size());
  const int64_t tasks = (out_features + block - 1) / block;
  auto* range = HWY_DYNAMIC_DISPATCH(LinearRange);
  pool.parallel_for(tasks, [&](int64_t task, int) {
    const int64_t j0 = task * block, j1 = std::min(j0 + block, out_features);
    range(qd, n, in_features, w, w_stride, DType::kF8E4M3, out_features, j0, j1, out);
    for (int64_t r = 0; r < n; ++r) {
      const float s = sd[r] * kF8WidenScale;
      float* o = out + r * out_features;
      for (int64_t j = j0; j < j1; ++j) o[j] = o[j] * s * row_scale[j];
    }
  });
}

}  // namespace herd::cpu
#endif
