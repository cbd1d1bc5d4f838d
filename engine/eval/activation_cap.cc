#include "engine/eval/activation_cap.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/common/error.h"
#include "kernels/cpu/fp8_activation.h"

namespace herd::eval {

namespace {

// y = W x in double, W dequantized (codes x row scale), skipping column `skip` (-1: none).
std::vector<double> exact_product(const Tensor& w, const float* scale, const std::vector<float>& x,
                                  int64_t skip) {
  const auto* codes = static_cast<const uint8_t*>(w.data);
  std::vector<double> y(size_t(w.rows), 0.0);
  for (int64_t j = 0; j < w.rows; ++j) {
    double acc = 0;
    const uint8_t* row = codes + j * w.row_stride();
    for (int64_t i = 0; i < w.cols; ++i)
      if (i != skip) acc += double(f8e4m3_to_f32(row[i])) * double(x[size_t(i)]);
    y[size_t(j)] = acc * double(scale[j]);
  }
  return y;
}

double rel_error(const std::vector<float>& y, const std::vector<double>& exact) {
  double num = 0, den = 0;
  for (size_t j = 0; j < y.size(); ++j) {
    num += (double(y[j]) - exact[j]) * (double(y[j]) - exact[j]);
    den += exact[j] * exact[j];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

CapRun run_one(Backend& be, const Tensor& w, const Tensor& w_ord, const Tensor& row_scale,
               std::vector<float>& x, float ub) {
  CapRun r;
  r.ub = ub;
  const int64_t k = w.cols;
  std::vector<float> q(static_cast<size_t>(k));
  r.scale = cpu::quantize_row_fp8(x.data(), k, ub, q.data());
  int64_t ordinary = 0, zeroed = 0;
  for (int64_t i = 1; i < k; ++i) {
    if (x[size_t(i)] == 0.0f) continue;
    ++ordinary;
    zeroed += q[size_t(i)] == 0.0f;
  }
  r.ordinary_underflow = ordinary ? double(zeroed) / double(ordinary) : 0.0;
  r.outlier_quantized = double(q[0]) * double(r.scale);

  const auto* scale = static_cast<const float*>(row_scale.data);
  std::vector<float> y(size_t(w.rows));
  Tensor xt{x.data(), DType::kF32, 1, k};
  Tensor yt{y.data(), DType::kF32, 1, w.rows};
  be.linear(xt, LinearWeight(w, row_scale, ub), yt);
  r.full_rel_error = rel_error(y, exact_product(w, scale, x, -1));
  be.linear(xt, LinearWeight(w_ord, row_scale, ub), yt);
  r.ordinary_rel_error = rel_error(y, exact_product(w_ord, scale, x, 0));
  return r;
}

}  // namespace

CapDemo demonstrate_activation_cap(Backend& backend, const Tensor& w, const Tensor& row_scale,
                                   float outlier, float ub, uint64_t seed) {
  if (w.dtype != DType::kF8E4M3 || row_scale.dtype != DType::kF32 || row_scale.rows != w.rows)
    throw Error("activation cap demo: needs an F8E4M3 weight with F32 row scales");
  CapDemo d;
  d.k = w.cols;
  d.outlier = outlier;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(w.cols));
  for (float& v : x) v = normal(rng);
  x[0] = outlier;

  // A contiguous copy of the weight, and one with the outlier's column zeroed.
  std::vector<uint8_t> full(size_t(w.rows * w.cols)), ordinary;
  for (int64_t j = 0; j < w.rows; ++j)
    std::memcpy(&full[size_t(j * w.cols)], static_cast<const uint8_t*>(w.data) + j * w.row_stride(),
                size_t(w.cols));
  ordinary = full;
  for (int64_t j = 0; j < w.rows; ++j) ordinary[size_t(j * w.cols)] = 0;  // E4M3 +0
  const Tensor wf{full.data(), DType::kF8E4M3, w.rows, w.cols};
  const Tensor wo{ordinary.data(), DType::kF8E4M3, w.rows, w.cols};
  d.capped = run_one(backend, wf, wo, row_scale, x, ub);
  d.uncapped = run_one(backend, wf, wo, row_scale, x, 0.0f);
  return d;
}

}  // namespace herd::eval
