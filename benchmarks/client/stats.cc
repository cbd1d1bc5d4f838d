#include "benchmarks/client/stats.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace herd::bench {

double mean(const std::vector<double>& xs) {
  if (xs.empty()) return 0;
  double s = 0;
  for (double x : xs) s += x;
  return s / static_cast<double>(xs.size());
}

double stddev(const std::vector<double>& xs) {
  if (xs.empty()) return 0;
  const double m = mean(xs);
  double s = 0;
  for (double x : xs) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(xs.size()));
}

double percentile(std::vector<double> xs, double p) {
  if (!(p >= 0 && p <= 100)) throw std::invalid_argument("percentile must be in [0, 100]");
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  const double rank = p / 100.0 * static_cast<double>(xs.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, xs.size() - 1);
  return xs[lo] + (xs[hi] - xs[lo]) * (rank - static_cast<double>(lo));
}

double median(const std::vector<double>& xs) { return percentile(xs, 50); }

Summary summarize(const std::vector<double>& xs) {
  Summary s;
  s.mean = mean(xs);
  s.median = median(xs);
  s.std = stddev(xs);
  s.p90 = percentile(xs, 90);
  s.p99 = percentile(xs, 99);
  s.max = percentile(xs, 100);
  return s;
}

}  // namespace herd::bench
