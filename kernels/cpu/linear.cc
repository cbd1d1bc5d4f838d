// linear(): out = x * w^T with fp32 accumulation, the op that dominates every forward pass.
//
// Decode (a few input rows) is bound by reading the weights from memory, so each task owns a
// range of output rows and streams those weight rows exactly once: a strip of 4 weight rows
// is multiplied against every group of up to 4 input rows while it is still in L1/L2.
// Prefill (many input rows) is bound by arithmetic, so the task's weight rows are cut into
// k-blocks small enough to stay in L2 while every input row passes over them. bf16/f16
// weights are widened to fp32 in registers; nothing is converted ahead of time.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/cpu_ops.h"
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

// res[r * NW + j] = dot(x row r, w row j) over len elements, for NR input rows (stride ldx)
// and NW weight rows (stride ldw). NR * NW independent accumulators hide the FMA latency.
template <int NR, int NW, class W>
HWY_INLINE void DotTile(const float* HWY_RESTRICT x, int64_t ldx,
                        const typename W::T* HWY_RESTRICT w, int64_t ldw, int64_t len,
                        float* HWY_RESTRICT res) {
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const int64_t lanes = int64_t(hn::Lanes(df));
  V acc[NR][NW];
  for (int r = 0; r < NR; ++r)
    for (int j = 0; j < NW; ++j) acc[r][j] = hn::Zero(df);
  int64_t i = 0;
  for (; i + lanes <= len; i += lanes) {
    V wv[NW];
    for (int j = 0; j < NW; ++j) wv[j] = LoadWidened<W>(df, w + j * ldw + i);
    for (int r = 0; r < NR; ++r) {
      const V xv = hn::LoadU(df, x + r * ldx + i);
      for (int j = 0; j < NW; ++j) acc[r][j] = hn::MulAdd(xv, wv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int j = 0; j < NW; ++j) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][j]));
      for (int64_t t = i; t < len; ++t) sum += x[r * ldx + t] * LoadScalar<W>(w + j * ldw + t);
      res[r * NW + j] = sum;
    }
  }
}

// Weight rows [j_begin, j_end) against NR input rows; out rows have stride ldo.
template <int NR, class W>
HWY_INLINE void RowGroup(const float* x, int64_t ldx, const typename W::T* w, int64_t ldw,
                         int64_t len, int64_t j_begin, int64_t j_end, float* out, int64_t ldo,
                         bool accumulate) {
  constexpr int kNW = NR <= 2 ? 4 : 2;  // keeps NR * NW accumulators within 8 registers
  float res[NR * kNW];
  int64_t j = j_begin;
  for (; j + kNW <= j_end; j += kNW) {
    DotTile<NR, kNW, W>(x, ldx, w + j * ldw, ldw, len, res);
    for (int r = 0; r < NR; ++r)
      for (int c = 0; c < kNW; ++c) {
        float& o = out[r * ldo + j + c];
        o = accumulate ? o + res[r * kNW + c] : res[r * kNW + c];
      }
  }
  for (; j < j_end; ++j) {
    DotTile<NR, 1, W>(x, ldx, w + j * ldw, ldw, len, res);
    for (int r = 0; r < NR; ++r) {
      float& o = out[r * ldo + j];
      o = accumulate ? o + res[r] : res[r];
    }
  }
}

template <class W>
HWY_INLINE void RowGroupN(int nr, const float* x, int64_t ldx, const typename W::T* w, int64_t ldw,
                          int64_t len, int64_t j_begin, int64_t j_end, float* out, int64_t ldo,
                          bool accumulate) {
  switch (nr) {
    case 1:
      return RowGroup<1, W>(x, ldx, w, ldw, len, j_begin, j_end, out, ldo, accumulate);
    case 2:
      return RowGroup<2, W>(x, ldx, w, ldw, len, j_begin, j_end, out, ldo, accumulate);
    case 3:
      return RowGroup<3, W>(x, ldx, w, ldw, len, j_begin, j_end, out, ldo, accumulate);
    default:
      return RowGroup<4, W>(x, ldx, w, ldw, len, j_begin, j_end, out, ldo, accumulate);
  }
}

constexpr int64_t kRowGroup = 4;       // input rows sharing one pass over a weight strip
constexpr int64_t kDecodeStrip = 4;    // weight rows streamed together in the decode order
constexpr int64_t kDecodeMaxRows = 8;  // up to here the weights are read from memory once
constexpr int64_t kPrefillKBlock = 512;

template <class W>
void LinearRangeT(const float* x, int64_t n, int64_t k, const typename W::T* w,
                  int64_t out_features, int64_t j_begin, int64_t j_end, float* out) {
  if (n <= kDecodeMaxRows) {
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kDecodeStrip) {
      const int64_t j1 = std::min(j0 + kDecodeStrip, j_end);
      for (int64_t r0 = 0; r0 < n; r0 += kRowGroup) {
        RowGroupN<W>(int(std::min(kRowGroup, n - r0)), x + r0 * k, k, w, k, k, j0, j1,
                     out + r0 * out_features, out_features, false);
      }
    }
    return;
  }
  for (int64_t k0 = 0; k0 < k; k0 += kPrefillKBlock) {
    const int64_t len = std::min(kPrefillKBlock, k - k0);
    for (int64_t r0 = 0; r0 < n; r0 += kRowGroup) {
      RowGroupN<W>(int(std::min(kRowGroup, n - r0)), x + r0 * k + k0, k, w + k0, k, len, j_begin,
                   j_end, out + r0 * out_features, out_features, k0 > 0);
    }
  }
}

// Output columns [j_begin, j_end) of out for all n rows.
void LinearRange(const float* x, int64_t n, int64_t k, const void* w, DType w_dtype,
                 int64_t out_features, int64_t j_begin, int64_t j_end, float* out) {
  switch (w_dtype) {
    case DType::kBF16:
      return LinearRangeT<BF16W>(x, n, k, static_cast<const hwy::bfloat16_t*>(w), out_features,
                                 j_begin, j_end, out);
    case DType::kF16:
      return LinearRangeT<F16W>(x, n, k, static_cast<const hwy::float16_t*>(w), out_features,
                                j_begin, j_end, out);
    default:
      return LinearRangeT<F32W>(x, n, k, static_cast<const float*>(w), out_features, j_begin, j_end,
                                out);
  }
}

}  // namespace herd::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace herd::cpu {

HWY_EXPORT(LinearRange);

void linear(ThreadPool& pool, const float* x, int64_t n, int64_t in_features, const void* w,
            DType w_dtype, int64_t out_features, float* out) {
  // Output rows per task: small enough that every thread gets several tasks (the dynamic
  // hand-out then evens out), large enough to amortize the hand-out; multiples of 4.
  const int64_t threads = pool.size();
  int64_t block = (out_features + threads * 8 - 1) / (threads * 8);
  block = std::clamp<int64_t>((block + 3) / 4 * 4, 4, 64);
  const int64_t tasks = (out_features + block - 1) / block;
  auto* range = HWY_DYNAMIC_DISPATCH(LinearRange);
  pool.parallel_for(tasks, [&](int64_t task, int) {
    const int64_t j0 = task * block;
    range(x, n, in_features, w, w_dtype, out_features, j0, std::min(j0 + block, out_features), out);
  });
}

}  // namespace herd::cpu
#endif
