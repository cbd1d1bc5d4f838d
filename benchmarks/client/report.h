// Presenting BenchmarkMetrics: vLLM's printed table (same labels and layout, plus P90, the E2EL
// block and the failed count) and the result fields under vLLM's JSON names.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "benchmarks/client/metrics.h"

namespace herd::bench {

std::string format_table(const BenchmarkMetrics& m);
// duration, completed, failed, total_input_tokens, total_output_tokens, request_throughput,
// output_throughput, total_token_throughput, {mean,median,std,p90,p99}_{ttft,tpot,itl,e2el}_ms,
// errors.
nlohmann::ordered_json metrics_json(const BenchmarkMetrics& m);

}  // namespace herd::bench
