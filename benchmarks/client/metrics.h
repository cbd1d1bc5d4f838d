// The serving metrics, computed and named exactly as vLLM's `bench serve` does
// (benchmarks/benchmark_serving.py: calculate_metrics and its result dict), so that results
// from herd and from vLLM compare field by field.
#pragma once

#include <string>
#include <vector>

#include "benchmarks/client/stats.h"
#include "benchmarks/client/stream_recorder.h"
#include "benchmarks/client/workload.h"

namespace herd::bench {

struct BenchmarkMetrics {
  int completed = 0;
  int failed = 0;
  long long total_input = 0;   // total_input_tokens
  long long total_output = 0;  // total_output_tokens
  double duration = 0;         // seconds
  double request_throughput = 0;
  double output_throughput = 0;
  double total_token_throughput = 0;
  Summary ttft_ms, tpot_ms, itl_ms, e2el_ms;
  std::vector<std::string> errors;  // one per failed request, in workload order
};

// Over successful requests only (as vLLM): output length is the server's completion_tokens
// (the number of content chunks when it sent no usage); input length is the server's
// prompt_tokens, else the workload's own count. TPOT = (e2el - ttft) / (output_len - 1) for
// requests with more than one output token; ITL pools every request's gaps.
BenchmarkMetrics calculate_metrics(const std::vector<BenchRequest>& requests,
                                   const std::vector<RequestOutput>& outputs, double duration_s);

}  // namespace herd::bench
