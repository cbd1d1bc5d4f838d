#include "benchmarks/client/report.h"

#include <cstdio>

namespace herd::bench {

namespace {

// vLLM: "{s:{c}^{n}}" with n = 50 — the title centred in a 50-wide rule.
std::string rule(const std::string& title, char c) {
  const size_t width = 50;
  if (title.size() >= width) return title + "\n";
  const size_t left = (width - title.size()) / 2;
  return std::string(left, c) + title + std::string(width - title.size() - left, c) + "\n";
}

// vLLM: "{:<40} {:<10}" and "{:<40} {:<10.2f}".
std::string row(const std::string& label, const std::string& value) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%-40s %-10s\n", label.c_str(), value.c_str());
  return buf;
}
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

struct MetricName {
  const char* key;
  const char* label;
  const char* header;
  const Summary BenchmarkMetrics::*field;
};
constexpr MetricName kMetrics[] = {
    {"ttft", "TTFT", "Time to First Token", &BenchmarkMetrics::ttft_ms},
    {"tpot", "TPOT", "Time per Output Token (excl. 1st token)", &BenchmarkMetrics::tpot_ms},
    {"itl", "ITL", "Inter-token Latency", &BenchmarkMetrics::itl_ms},
    {"e2el", "E2EL", "End-to-end Latency", &BenchmarkMetrics::e2el_ms},
};

}  // namespace

std::string format_table(const BenchmarkMetrics& m) {
  std::string s = rule(" Serving Benchmark Result ", '=');
  s += row("Successful requests:", std::to_string(m.completed));
  s += row("Failed requests:", std::to_string(m.failed));
  s += row("Benchmark duration (s):", num(m.duration));
  s += row("Total input tokens:", std::to_string(m.total_input));
  s += row("Total generated tokens:", std::to_string(m.total_output));
  s += row("Request throughput (req/s):", num(m.request_throughput));
  s += row("Output token throughput (tok/s):", num(m.output_throughput));
  s += row("Total Token throughput (tok/s):", num(m.total_token_throughput));
  for (const auto& k : kMetrics) {
    const Summary& v = m.*(k.field);
    const std::string l = k.label;
    s += rule(k.header, '-');
    s += row("Mean " + l + " (ms):", num(v.mean));
    s += row("Median " + l + " (ms):", num(v.median));
    s += row("P90 " + l + " (ms):", num(v.p90));
    s += row("P99 " + l + " (ms):", num(v.p99));
    s += row("Max " + l + " (ms):", num(v.max));
  }
  s += std::string(50, '=') + "\n";
  return s;
}

nlohmann::ordered_json metrics_json(const BenchmarkMetrics& m) {
  nlohmann::ordered_json j;
  j["duration"] = m.duration;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input;
  j["total_output_tokens"] = m.total_output;
  j["request_throughput"] = m.request_throughput;
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  for (const auto& k : kMetrics) {
    const Summary& v = m.*(k.field);
    const std::string suffix = std::string(k.key) + "_ms";
    j["mean_" + suffix] = v.mean;
    j["median_" + suffix] = v.median;
    j["std_" + suffix] = v.std;
    j["p90_" + suffix] = v.p90;
    j["p99_" + suffix] = v.p99;
    j["max_" + suffix] = v.max;
  }
  j["errors"] = m.errors;
  return j;
}

}  // namespace herd::bench
