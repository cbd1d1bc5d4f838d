#include "engine/eval/eval_stats.h"

#include <algorithm>
#include <cmath>

namespace herd::eval {

std::vector<double> log_softmax(const float* logits, int64_t n) {
  std::vector<double> out(size_t(std::max<int64_t>(n, 0)));
  if (n <= 0) return out;
  double mx = logits[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, double(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = double(logits[i]) - lse;
  return out;
}

double kl_divergence(const float* p_logits, const float* q_logits, int64_t n) {
  const auto lp = log_softmax(p_logits, n), lq = log_softmax(q_logits, n);
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) {
    const double p = std::exp(lp[i]);
    if (p > 0) kl += p * (lp[i] - lq[i]);
  }
  return std::max(kl, 0.0);
}

double entropy(const float* logits, int64_t n) {
  double h = 0;
  for (double lp : log_softmax(logits, n)) h -= std::exp(lp) * lp;
  return std::max(h, 0.0);
}

int64_t argmax(const float* logits, int64_t n) {
  return int64_t(std::max_element(logits, logits + n) - logits);
}

int64_t agreement_length(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return int64_t(i);
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double pos = std::clamp(q, 0.0, 1.0) * double(values.size() - 1);
  const size_t lo = size_t(std::floor(pos)), hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - double(lo)) * (values[hi] - values[lo]);
}

Summary summarize(const std::vector<double>& values) {
  Summary s;
  s.count = int64_t(values.size());
  if (values.empty()) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / double(values.size());
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  s.p50 = percentile(values, 0.5);
  s.p99 = percentile(values, 0.99);
  return s;
}

}  // namespace herd::eval
