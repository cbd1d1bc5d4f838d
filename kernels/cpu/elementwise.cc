// The row-wise and elementwise kernels: RMSNorm (with and without the residual add), SwiGLU,
// RoPE and dtype widening. All are memory-bound one-pass loops; they are split across threads
// only when a call is big enough (prefill) for that to pay for the hand-out.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/thread_pool.h"

// Highway's per-target re-inclusion needs exactly this include order.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/elementwise.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "kernels/cpu/load_widen-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace herd::cpu::HWY_NAMESPACE {

// If residual is non-null: residual += x and the norm is taken of residual; else of x.
template <class W>
void RmsNormRowT(float* HWY_RESTRICT residual, const float* HWY_RESTRICT x, int64_t dim,
                 const typename W::T* HWY_RESTRICT w, float eps, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = int64_t(hn::Lanes(df));
  auto ss0 = hn::Zero(df), ss1 = hn::Zero(df);
  const float* src = x;
  int64_t i = 0;
  if (residual) {
    for (; i + lanes <= dim; i += lanes) {
      const auto v = hn::Add(hn::LoadU(df, residual + i), hn::LoadU(df, x + i));
      hn::StoreU(v, df, residual + i);
      ss0 = hn::MulAdd(v, v, ss0);
    }
    for (int64_t t = i; t < dim; ++t) residual[t] += x[t];
    src = residual;
  } else {
    for (; i + 2 * lanes <= dim; i += 2 * lanes) {
      const auto a = hn::LoadU(df, x + i), b = hn::LoadU(df, x + i + lanes);
      ss0 = hn::MulAdd(a, a, ss0);
      ss1 = hn::MulAdd(b, b, ss1);
    }
    for (; i + lanes <= dim; i += lanes) {
      const auto a = hn::LoadU(df, x + i);
      ss0 = hn::MulAdd(a, a, ss0);
    }
  }
  float ss = hn::GetLane(hn::SumOfLanes(df, hn::Add(ss0, ss1)));
  for (int64_t t = i; t < dim; ++t) ss += src[t] * src[t];
  const float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
  const auto vinv = hn::Set(df, inv);
  i = 0;
  for (; i + lanes <= dim; i += lanes) {
    const auto normed = hn::Mul(hn::LoadU(df, src + i), vinv);
    hn::StoreU(hn::Mul(LoadWidened<W>(df, w + i), normed), df, out + i);
  }
  for (; i < dim; ++i) out[i] = LoadScalar<W>(w + i) * (src[i] * inv);
}

void RmsNormRows(float* residual, const float* x, int64_t rows, int64_t dim, const void* w,
                 DType w_dtype, float eps, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    float* res = residual ? residual + r * dim : nullptr;
    const float* xr = x + r * dim;
    float* o = out + r * dim;
    switch (w_dtype) {
      case DType::kBF16:
        RmsNormRowT<BF16W>(res, xr, dim, static_cast<const hwy::bfloat16_t*>(w), eps, o);
        break;
      case DType::kF16:
        RmsNormRowT<F16W>(res, xr, dim, static_cast<const hwy::float16_t*>(w), eps, o);
        break;
      default:
        RmsNormRowT<F32W>(res, xr, dim, static_cast<const float*>(w), eps, o);
    }
  }
}

// silu(g) * u = g * u / (1 + exp(-g)). exp's argument is clamped to +-88 so it never
// overflows to inf (silu of g < -88 is below 1e-36 either way).
void SwigluSpan(const float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, int64_t count,
                float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = int64_t(hn::Lanes(df));
  const auto one = hn::Set(df, 1.0f), lo = hn::Set(df, -88.0f), hi = hn::Set(df, 88.0f);
  int64_t i = 0;
  for (; i + lanes <= count; i += lanes) {
    const auto g = hn::LoadU(df, gate + i);
    const auto e = hn::Exp(df, hn::Min(hn::Max(hn::Neg(g), lo), hi));
    const auto silu = hn::Div(g, hn::Add(one, e));
    hn::StoreU(hn::Mul(silu, hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < count; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(std::clamp(-g, -88.0f, 88.0f))) * up[i];
  }
}

// Rotates every head of one token with the token's cos/sin table (half = head_dim / 2):
// v[j] = x1*c - x2*s, v[j+half] = x2*c + x1*s, exactly the product order of the reference.
void RopeToken(float* HWY_RESTRICT x, int num_heads, int head_dim, const float* HWY_RESTRICT c,
               const float* HWY_RESTRICT s) {
  const hn::ScalableTag<float> df;
  const int lanes = int(hn::Lanes(df));
  const int half = head_dim / 2;
  for (int h = 0; h < num_heads; ++h) {
    float* v = x + int64_t(h) * head_dim;
    int j = 0;
    for (; j + lanes <= half; j += lanes) {
      const auto x1 = hn::LoadU(df, v + j), x2 = hn::LoadU(df, v + j + half);
      const auto cv = hn::LoadU(df, c + j), sv = hn::LoadU(df, s + j);
      hn::StoreU(hn::Sub(hn::Mul(x1, cv), hn::Mul(x2, sv)), df, v + j);
      hn::StoreU(hn::Add(hn::Mul(x2, cv), hn::Mul(x1, sv)), df, v + j + half);
    }
    for (; j < half; ++j) {
      const float x1 = v[j], x2 = v[j + half];
      v[j] = x1 * c[j] - x2 * s[j];
      v[j + half] = x2 * c[j] + x1 * s[j];
    }
  }
}

template <class W>
void ConvertSpanT(const typename W::T* HWY_RESTRICT src, int64_t count, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + lanes <= count; i += lanes) hn::StoreU(LoadWidened<W>(df, src + i), df, out + i);
  for (; i < count; ++i) out[i] = LoadScalar<W>(src + i);
}

void ConvertSpan(const void* src, DType dtype, int64_t count, float* out) {
  switch (dtype) {
    case DType::kBF16:
      return ConvertSpanT<BF16W>(static_cast<const hwy::bfloat16_t*>(src), count, out);
    case DType::kF16:
      return ConvertSpanT<F16W>(static_cast<const hwy::float16_t*>(src), count, out);
    default:
      return ConvertSpanT<F32W>(static_cast<const float*>(src), count, out);
  }
}

}  // namespace herd::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace herd::cpu {

HWY_EXPORT(RmsNormRows);
HWY_EXPORT(SwigluSpan);
HWY_EXPORT(RopeToken);
HWY_EXPORT(ConvertSpan);

namespace {

// Below this many elements per task the thread hand-out costs more than the work.
constexpr int64_t kMinElementsPerTask = 16384;

// Splits `items` items of `item_size` elements into tasks of whole items.
int64_t items_per_task(const ThreadPool& pool, int64_t items, int64_t item_size) {
  const int64_t by_size =
      std::max<int64_t>(1, kMinElementsPerTask / std::max<int64_t>(1, item_size));
  const int64_t by_threads = (items + pool.size() * 4 - 1) / (pool.size() * 4);
  return std::max<int64_t>({by_size, by_threads, 1});
}

void for_each_chunk(ThreadPool& pool, int64_t items, int64_t item_size,
                    const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t per = items_per_task(pool, items, item_size);
  pool.parallel_for((items + per - 1) / per, [&](int64_t task, int) {
    const int64_t begin = task * per;
    fn(begin, std::min(items, begin + per));
  });
}

}  // namespace

void rope_angles(int32_t position, const float* inv_freq, int half, float* cos_out,
                 float* sin_out) {
  const float pos = float(position);  // exact: positions stay far below 2^24
  for (int j = 0; j < half; ++j) {
    const float angle = pos * inv_freq[j];  // the fp32 product Hugging Face computes
    cos_out[j] = float(std::cos(double(angle)));
    sin_out[j] = float(std::sin(double(angle)));
  }
}

void rms_norm(ThreadPool& pool, const float* x, int64_t n, int64_t dim, const void* weight,
              DType w_dtype, float eps, float* out) {
  auto* fn = HWY_DYNAMIC_DISPATCH(RmsNormRows);
  for_each_chunk(pool, n, dim, [&](int64_t r0, int64_t r1) {
    fn(nullptr, x + r0 * dim, r1 - r0, dim, weight, w_dtype, eps, out + r0 * dim);
  });
}

void add_rms_norm(ThreadPool& pool, float* residual, const float* x, int64_t n, int64_t dim,
                  const void* weight, DType w_dtype, float eps, float* out) {
  auto* fn = HWY_DYNAMIC_DISPATCH(RmsNormRows);
  for_each_chunk(pool, n, dim, [&](int64_t r0, int64_t r1) {
    fn(residual + r0 * dim, x + r0 * dim, r1 - r0, dim, weight, w_dtype, eps, out + r0 * dim);
  });
}

void swiglu(ThreadPool& pool, const float* gate, const float* up, int64_t count, float* out) {
  auto* fn = HWY_DYNAMIC_DISPATCH(SwigluSpan);
  for_each_chunk(pool, count, 1,
                 [&](int64_t b, int64_t e) { fn(gate + b, up + b, e - b, out + b); });
}

void rope(ThreadPool& pool, float* x, int64_t n, int num_heads, int head_dim,
          const int32_t* positions, const float* inv_freq) {
  auto* fn = HWY_DYNAMIC_DISPATCH(RopeToken);
  const int half = head_dim / 2;
  const int64_t row = int64_t(num_heads) * head_dim;
  for_each_chunk(pool, n, row, [&](int64_t t0, int64_t t1) {
    std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
    for (int64_t t = t0; t < t1; ++t) {
      rope_angles(positions[t], inv_freq, half, c.data(), s.data());
      fn(x + t * row, num_heads, head_dim, c.data(), s.data());
    }
  });
}

void convert_to_f32(ThreadPool& pool, const void* src, DType dtype, int64_t count, float* out) {
  auto* fn = HWY_DYNAMIC_DISPATCH(ConvertSpan);
  const size_t elem = dtype_size(dtype);
  for_each_chunk(pool, count, 1, [&](int64_t b, int64_t e) {
    fn(static_cast<const char*>(src) + size_t(b) * elem, dtype, e - b, out + b);
  });
}

}  // namespace herd::cpu
#endif
