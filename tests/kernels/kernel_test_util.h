// Helpers shared by the kernel tests: seeded random data, weight dtype conversion, error
// metrics, tensor views over std::vector, and a loop that runs a check once per SIMD target
// the machine supports (so AVX2 / SSE4 paths are exercised even on an AVX-512 machine).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/common/dtype.h"
#include "hwy/targets.h"
#include "kernels/linear_weight.h"
#include "kernels/tensor.h"

namespace herd::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Weights stored as `dtype` (F32 keeps the floats; F16/BF16 hold rounded bits).
struct WeightBuffer {
  DType dtype = DType::kF32;
  std::vector<float> f32;
  std::vector<uint16_t> half;
  void* data() { return dtype == DType::kF32 ? static_cast<void*>(f32.data()) : half.data(); }
};

inline WeightBuffer make_weights(const std::vector<float>& values, DType dtype) {
  WeightBuffer w;
  w.dtype = dtype;
  if (dtype == DType::kF32) {
    w.f32 = values;
  } else {
    w.half.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      w.half[i] = dtype == DType::kBF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
    }
  }
  return w;
}

inline Tensor view(void* data, DType dtype, int64_t rows, int64_t cols) {
  return Tensor{data, dtype, rows, cols};
}
inline Tensor view(std::vector<float>& v, int64_t rows, int64_t cols) {
  EXPECT_EQ(int64_t(v.size()), rows * cols);
  return Tensor{v.data(), DType::kF32, rows, cols};
}

// sum (got - want)^2 / sum want^2: scale-free, the metric llama.cpp's backend tests use.
inline double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double err = 0.0, ref = 0.0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    const double d = double(got[i]) - want[i];
    err += d * d;
    ref += double(want[i]) * want[i];
  }
  return ref > 0.0 ? err / ref : err;
}

inline double max_abs_diff(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double m = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(double(got[i]) - want[i]);
    if (!(d <= m)) m = d;  // NaN propagates as a failure
  }
  return m;
}

// Runs fn() once with dispatch forced to each SIMD target compiled in and supported here.
template <class Fn>
void for_each_simd_target(Fn fn) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    SCOPED_TRACE(hwy::TargetName(target));
    fn();
  }
  hwy::SetSupportedTargetsForTest(0);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

// Random FP8 codes of a Gaussian-ish weight quantized row-wise as `herd quantize` does.
struct Fp8Weight {
  std::vector<uint8_t> codes;
  std::vector<float> scale;
  int64_t rows = 0, cols = 0, stride = 0;
  LinearWeight lw(float ub) {
    return LinearWeight(Tensor{codes.data(), DType::kF8E4M3, rows, cols, stride},
                        Tensor{scale.data(), DType::kF32, rows, 1}, ub);
  }
};

inline Fp8Weight make_fp8(int64_t o, int64_t k, uint32_t seed, int64_t stride = 0) {
  Fp8Weight w;
  w.rows = o;
  w.cols = k;
  w.stride = stride;
  const int64_t ld = stride ? stride : k;
  const auto v = random_floats(size_t(o * ld), seed);
  w.codes.resize(v.size());
  w.scale.resize(size_t(o));
  for (int64_t j = 0; j < o; ++j) {
    float amax = 0.0f;
    for (int64_t i = 0; i < ld; ++i) amax = std::max(amax, std::fabs(v[size_t(j * ld + i)]));
    const float s = amax / 448.0f;
    w.scale[size_t(j)] = s;
    for (int64_t i = 0; i < ld; ++i)
      w.codes[size_t(j * ld + i)] = f32_to_f8e4m3(v[size_t(j * ld + i)] / s);
  }
  return w;
}

}  // namespace herd::test
