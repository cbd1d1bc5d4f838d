#include "benchmarks/client/metrics.h"

#include <stdexcept>

namespace herd::bench {

BenchmarkMetrics calculate_metrics(const std::vector<BenchRequest>& requests,
                                   const std::vector<RequestOutput>& outputs, double duration_s) {
  if (requests.size() != outputs.size())
    throw std::invalid_argument("calculate_metrics: one output per request");
  BenchmarkMetrics m;
  m.duration = duration_s;
  std::vector<double> ttft, tpot, itl, e2el;  // milliseconds
  for (size_t i = 0; i < outputs.size(); ++i) {
    const RequestOutput& o = outputs[i];
    if (!o.success) {
      ++m.failed;
      m.errors.push_back(o.error);
      continue;
    }
    ++m.completed;
    const long long out_len = o.output_tokens >= 0 ? o.output_tokens : o.content_chunks;
    m.total_output += out_len;
    m.total_input += o.prompt_tokens >= 0 ? o.prompt_tokens : requests[i].prompt_len;
    if (out_len > 1) tpot.push_back((o.latency - o.ttft) / static_cast<double>(out_len - 1) * 1e3);
    for (double g : o.itl) itl.push_back(g * 1e3);
    ttft.push_back(o.ttft * 1e3);
    e2el.push_back(o.latency * 1e3);
  }
  if (duration_s > 0) {
    m.request_throughput = m.completed / duration_s;
    m.output_throughput = static_cast<double>(m.total_output) / duration_s;
    m.total_token_throughput = static_cast<double>(m.total_input + m.total_output) / duration_s;
  }
  m.ttft_ms = summarize(ttft);
  m.tpot_ms = summarize(tpot);
  m.itl_ms = summarize(itl);
  m.e2el_ms = summarize(e2el);
  return m;
}

}  // namespace herd::bench
