// Sends the workload on its arrival schedule and collects one RequestOutput per request.
// Each request runs on its own thread from its arrival until its stream ends (the backends are
// blocking clients); with max_concurrency > 0 a request that arrives while that many are in
// flight waits for one to finish, and its timing starts only when it is sent, as in vLLM.
#pragma once

#include <vector>

#include "benchmarks/client/backend.h"

namespace herd::bench {

struct RunResult {
  std::vector<RequestOutput> outputs;  // in workload order
  double duration = 0;                 // seconds, first dispatch -> last stream end
};

// arrivals[i]: seconds after the start at which requests[i] is due (non-decreasing).
RunResult run_requests(Backend& backend, const std::vector<BenchRequest>& requests,
                       const std::vector<double>& arrivals, int max_concurrency);

}  // namespace herd::bench
