#include "server/metrics.h"

#include <cstdio>

namespace herd::server {

namespace {

std::string fmt_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void gauge(std::string& out, const std::string& name, const std::string& help,
           const std::string& type, const std::string& labels, double v) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  out += name + "{" + labels + "} " + fmt_double(v) + "\n";
}

}  // namespace

std::string prometheus_label_escape(const std::string& v) {
  std::string r;
  for (char c : v) {
    if (c == '\\')
      r += "\\\\";
    else if (c == '"')
      r += "\\\"";
    else if (c == '\n')
      r += "\\n";
    else
      r += c;
  }
  return r;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help,
                       const std::string& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cum += counts_[i];
    std::string le = i < bounds_.size() ? fmt_double(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cum) + "\n";
  }
  out += name + "_sum{" + labels + "} " + fmt_double(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

Metrics::Metrics(std::string model_name)
    : labels_("model_name=\"" + prometheus_label_escape(model_name) + "\""),
      // Same bucket edges as vLLM's, so dashboards built for it read ours.
      ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
             1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}),
      itl_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
            20.0, 40.0, 80.0}),
      e2e_({0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
            30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}) {}

void Metrics::count_finished(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++finished_[reason];
}

void Metrics::count_http(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++http_[status];
}

std::string Metrics::render(const EngineStats& s) const {
  std::string out;
  const std::string& l = labels_;
  gauge(out, "herd_num_requests_running", "Requests in the running batch.", "gauge", l, s.running);
  gauge(out, "herd_num_requests_waiting", "Requests waiting to be scheduled.", "gauge", l,
        s.waiting);
  gauge(out, "herd_kv_cache_usage_ratio", "Fraction of KV-cache blocks owned by live requests.",
        "gauge", l, s.kv_usage);
  gauge(out, "herd_kv_cache_blocks", "KV-cache blocks in the pool.", "gauge", l,
        static_cast<double>(s.num_blocks));
  gauge(out, "herd_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
        "counter", l, static_cast<double>(s.prefix_queries_tokens));
  gauge(out, "herd_prefix_cache_hits_total", "Prompt tokens found in the prefix cache.", "counter",
        l, static_cast<double>(s.prefix_hits_tokens));
  gauge(out, "herd_num_preemptions_total", "Requests preempted (recomputed later).", "counter", l,
        static_cast<double>(s.preemptions));
  gauge(out, "herd_prompt_tokens_total", "Prompt tokens processed.", "counter", l,
        static_cast<double>(s.prompt_tokens));
  gauge(out, "herd_generation_tokens_total", "Tokens generated.", "counter", l,
        static_cast<double>(s.generation_tokens));
  gauge(out, "herd_nonfinite_logit_errors_total", "Requests failed by a NaN or infinite logit.",
        "counter", l, static_cast<double>(s.nonfinite_logit_errors));
  gauge(out, "herd_engine_healthy", "1 while the engine is healthy, 0 after a failed step.",
        "gauge", l, s.healthy ? 1.0 : 0.0);
  ttft_.render(out, "herd_time_to_first_token_seconds", "Time to first token.", l);
  itl_.render(out, "herd_inter_token_latency_seconds", "Time between streamed tokens.", l);
  e2e_.render(out, "herd_e2e_request_latency_seconds", "Request latency, arrival to finish.", l);
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP herd_request_success_total Finished samples by finish reason.\n";
  out += "# TYPE herd_request_success_total counter\n";
  for (const char* r : {"stop", "length", "abort"}) {
    auto it = finished_.find(r);
    out += "herd_request_success_total{" + l + ",finished_reason=\"" + r + "\"} " +
           std::to_string(it == finished_.end() ? 0 : it->second) + "\n";
  }
  out += "# HELP herd_http_responses_total HTTP responses by status code.\n";
  out += "# TYPE herd_http_responses_total counter\n";
  for (const auto& [code, n] : http_)
    out += "herd_http_responses_total{" + l + ",code=\"" + std::to_string(code) + "\"} " +
           std::to_string(n) + "\n";
  return out;
}

}  // namespace herd::server
