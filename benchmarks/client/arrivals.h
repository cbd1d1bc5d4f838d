// When each benchmark request is sent: offsets in seconds from the start of the run.
#pragma once

#include <cstdint>
#include <vector>

namespace herd::bench {

// n arrivals of a Poisson process at `rate` requests/s: the first at 0 (vLLM also sends its
// first request at once), then independent exponential gaps with mean 1/rate. rate = +inf sends
// everything at 0. The same seed gives the same schedule on every platform (the exponential is
// drawn by inversion from 53 random bits rather than through std::exponential_distribution,
// whose algorithm the standard leaves open).
std::vector<double> poisson_arrivals(int n, double rate, uint64_t seed);

}  // namespace herd::bench
