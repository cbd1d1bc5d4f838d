// The few numeric kernels every sampling step runs over a full vocab row, defined so that
// the result is the same on any machine: an exp made of plain fp32 adds/muls and bit
// operations (no libm, no FMA contraction: a device implementation uses __fadd_rn/__fmul_rn),
// and fp64 sums in a fixed order. Written as simple loops the compiler vectorizes.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

namespace herd {

// e^x for x <= 88, within 3e-7 relative of the true value; 0 for x < -87 (and for -inf).
// Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, then the Cephes expf polynomial, then a
// multiply by 2^n built from the exponent bits.
inline float sampler_exp(float x) {
  const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = xc * 1.44269504088896341f + kRound;
  const float n = t - kRound;
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kRound);
  float r = xc - n * 0.693359375f;  // ln2 high part: n * it is exact
  r = r - n * -2.12194440e-4f;      // ln2 low part
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r;
  p = p + 1.0f;
  const float scale = std::bit_cast<float>((ni + 127) << 23);
  return x < -87.0f ? 0.0f : p * scale;
}

// Max of a row (order does not matter for max); -inf for an all -inf row.
float row_max(std::span<const float> row);

// w[i] = sampler_exp(row[i] - m).
void exp_row(std::span<const float> row, float m, float* w);

// row[i] = -inf where sampler_exp(row[i] - m) < min_weight (the min_p rule).
void mask_below(std::span<float> row, float m, float min_weight);

// Ids are grouped in blocks of kSumBlock (block b = ids [b * kSumBlock, (b + 1) * kSumBlock)).
inline constexpr size_t kSumBlock = 1024;

// fp64 sum of w[0..n), n <= kSumBlock, in 8 lanes: lane j sums the entries with index % 8 == j
// in index order, then ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
double lane_sum(const float* w, size_t n);

// w[i] = sampler_exp(row[i] - m) for the whole row, and block_sums[b] = lane_sum of block b.
// Returns the total: the block sums added in block order (fp64). block_sums needs
// ceil(row.size() / kSumBlock) entries.
double exp_weights(std::span<const float> row, float m, float* w, double* block_sums);

// exp_weights for a row that is -inf outside `ids` (ascending): sets w only at `ids`, every
// block sum (0 for blocks without ids) and the total, bit for bit as exp_weights would, since
// the weights it skips are +0 and adding +0 changes no fp64 sum.
double exp_weights_sparse(std::span<const float> row, std::span<const int32_t> ids, float m,
                          float* w, double* block_sums);

}  // namespace herd
