#include "engine/sample/logprobs.h"

#include <algorithm>
#include <cmath>

#include "engine/sample/row_math.h"

namespace herd {

TokenLogprob compute_logprobs(std::span<const float> raw_logits, int32_t chosen, int top_n) {
  const float m = row_max(raw_logits);
  // Z as exp_weights() sums it, a block at a time without a vocab-sized buffer.
  double sum = 0.0;
  float w[kSumBlock];
  for (size_t start = 0; start < raw_logits.size(); start += kSumBlock) {
    const size_t n = std::min(kSumBlock, raw_logits.size() - start);
    exp_row(raw_logits.subspan(start, n), m, w);
    sum += lane_sum(w, n);
  }
  const double log_z = double(m) + std::log(sum);

  TokenLogprob out;
  out.id = chosen;
  out.logprob = float(double(raw_logits[size_t(chosen)]) - log_z);
  if (top_n <= 0) return out;

  // A small sorted list (best first) holds the running top_n; most entries fail the first
  // comparison against its last element.
  auto& top = out.top;
  top.reserve(size_t(top_n) + 1);
  auto better = [](const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  for (size_t i = 0; i < raw_logits.size(); ++i) {
    const std::pair<int32_t, float> e{int32_t(i), raw_logits[i]};
    if (top.size() == size_t(top_n) && !better(e, top.back())) continue;
    top.insert(std::upper_bound(top.begin(), top.end(), e, better), e);
    if (top.size() > size_t(top_n)) top.pop_back();
  }
  for (auto& [id, value] : top) value = float(double(value) - log_z);
  return out;
}

}  // namespace herd
