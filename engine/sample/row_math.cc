#include "engine/sample/row_math.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace herd {
namespace {

// 4-wide vectors (GCC/Clang vector extensions; 16 bytes, the baseline x86-64/ARM width). The
// compiler does not if-convert the selects in sampler_exp under the default -ftrapping-math, so the
// hot loops spell them out as vector selects; every lane performs exactly the scalar function's
// IEEE operations.
using F4 = float __attribute__((vector_size(16)));
using I4 = int32_t __attribute__((vector_size(16)));
using D2 = double __attribute__((vector_size(16)));

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

F4 load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void store4(float* p, F4 v) { std::memcpy(p, &v, sizeof v); }
F4 splat(float x) { return F4{x, x, x, x}; }

// sampler_exp on 4 lanes, operation for operation.
F4 exp4(F4 x) {
  const F4 lo = splat(-87.0f), hi = splat(88.0f);
  F4 xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const F4 round = splat(12582912.0f);
  const F4 t = xc * splat(1.44269504088896341f) + round;
  const F4 n = t - round;
  const I4 ni = reinterpret_cast<I4>(t) - reinterpret_cast<I4>(round);
  F4 r = xc - n * splat(0.693359375f);
  r = r - n * splat(-2.12194440e-4f);
  const F4 r2 = r * r;
  F4 p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  p = p * r2 + r;
  p = p + splat(1.0f);
  const F4 scale = reinterpret_cast<F4>((ni + 127) << 23);
  return x < lo ? splat(0.0f) : p * scale;
}

}  // namespace

float row_max(std::span<const float> row) {
  F4 a = splat(kNegInf), b = a;
  size_t i = 0;
  for (; i + 8 <= row.size(); i += 8) {
    const F4 u = load4(row.data() + i), v = load4(row.data() + i + 4);
    a = u > a ? u : a;
    b = v > b ? v : b;
  }
  float m = kNegInf;
  for (int j = 0; j < 4; ++j) m = std::max({m, a[j], b[j]});
  for (; i < row.size(); ++i) m = row[i] > m ? row[i] : m;
  return m;
}

void exp_row(std::span<const float> row, float m, float* w) {
  size_t i = 0;
  const F4 mv = splat(m);
  for (; i + 4 <= row.size(); i += 4) store4(w + i, exp4(load4(row.data() + i) - mv));
  for (; i < row.size(); ++i) w[i] = sampler_exp(row[i] - m);
}

void mask_below(std::span<float> row, float m, float min_weight) {
  size_t i = 0;
  const F4 mv = splat(m), minv = splat(min_weight), ninf = splat(kNegInf);
  for (; i + 4 <= row.size(); i += 4) {
    const F4 l = load4(row.data() + i);
    store4(row.data() + i, exp4(l - mv) >= minv ? l : ninf);
  }
  for (; i < row.size(); ++i) row[i] = sampler_exp(row[i] - m) >= min_weight ? row[i] : kNegInf;
}

double lane_sum(const float* w, size_t n) {
  using F2 = float __attribute__((vector_size(8)));
  D2 acc01 = {0, 0}, acc23 = acc01, acc45 = acc01, acc67 = acc01;  // lanes 0-7
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    F2 v[4];
    std::memcpy(v, w + i, sizeof v);
    acc01 += __builtin_convertvector(v[0], D2);
    acc23 += __builtin_convertvector(v[1], D2);
    acc45 += __builtin_convertvector(v[2], D2);
    acc67 += __builtin_convertvector(v[3], D2);
  }
  double acc[8] = {acc01[0], acc01[1], acc23[0], acc23[1], acc45[0], acc45[1], acc67[0], acc67[1]};
  for (; i < n; ++i) acc[i % 8] += double(w[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double exp_weights(std::span<const float> row, float m, float* w, double* block_sums) {
  const size_t n = row.size();
  exp_row(row, m, w);
  double total = 0.0;
  for (size_t b = 0, start = 0; start < n; ++b, start += kSumBlock) {
    block_sums[b] = lane_sum(w + start, std::min(kSumBlock, n - start));
    total += block_sums[b];
  }
  return total;
}

double exp_weights_sparse(std::span<const float> row, std::span<const int32_t> ids, float m,
                          float* w, double* block_sums) {
  const size_t num_blocks = (row.size() + kSumBlock - 1) / kSumBlock;
  std::fill(block_sums, block_sums + num_blocks, 0.0);
  for (size_t k = 0; k < ids.size();) {
    const size_t b = size_t(ids[k]) / kSumBlock;
    double acc[8] = {};
    for (; k < ids.size() && size_t(ids[k]) / kSumBlock == b; ++k) {
      const size_t id = size_t(ids[k]);
      w[id] = sampler_exp(row[id] - m);
      acc[id % 8] += double(w[id]);  // kSumBlock % 8 == 0: the lane lane_sum would use
    }
    block_sums[b] =
        ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }
  double total = 0.0;
  for (size_t b = 0; b < num_blocks; ++b) total += block_sums[b];
  return total;
}

}  // namespace herd
