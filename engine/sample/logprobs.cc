#include "engine/sample/logprobs.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace herd {

TokenLogprob compute_logprobs(std::span<const float> raw_logits, int32_t chosen, int top_n) {
  float m = -std::numeric_limits<float>::infinity();
  for (float l : raw_logits) m = std::max(m, l);
  double sum = 0.0;
  for (float l : raw_logits) sum += double(std::exp(l - m));  // fp32 exp, fp64 sum
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
