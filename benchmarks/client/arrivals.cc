#include "benchmarks/client/arrivals.h"

#include <cmath>
#include <random>
#include <stdexcept>

namespace herd::bench {

std::vector<double> poisson_arrivals(int n, double rate, uint64_t seed) {
  if (n < 0) throw std::invalid_argument("poisson_arrivals: n < 0");
  if (!(rate > 0)) throw std::invalid_argument("poisson_arrivals: rate must be > 0");
  std::vector<double> t(static_cast<size_t>(n), 0.0);
  if (std::isinf(rate)) return t;
  std::mt19937_64 rng(seed);
  for (int i = 1; i < n; ++i) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
    t[i] = t[i - 1] - std::log1p(-u) / rate;
  }
  return t;
}

}  // namespace herd::bench
