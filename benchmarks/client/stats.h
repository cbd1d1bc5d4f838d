// Summary statistics with numpy's conventions, so that herd's numbers line up with vLLM's
// `bench serve` (np.mean, np.median, np.std with ddof=0, np.percentile with linear
// interpolation). An empty sample summarises to zeros, as vLLM's `np.mean(xs or 0)` does.
#pragma once

#include <vector>

namespace herd::bench {

double mean(const std::vector<double>& xs);
double stddev(const std::vector<double>& xs);  // population (ddof = 0)
// p in [0, 100]; linear interpolation between the closest ranks (numpy's default).
double percentile(std::vector<double> xs, double p);
double median(const std::vector<double>& xs);

// The statistics `bench serve` reports for each latency metric, in the unit of the input.
struct Summary {
  double mean = 0, median = 0, std = 0, p90 = 0, p99 = 0;
  double max = 0;  // the worst sample (a few long stalls hide below p99)
};
Summary summarize(const std::vector<double>& xs);

}  // namespace herd::bench
