// Server-side Prometheus metrics: latency histograms and finished-request counters observed as
// outputs stream out, plus the engine's own gauges and counters (EngineStats) at scrape time.
// Rendered in the Prometheus text exposition format 0.0.4.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/api/engine.h"

namespace herd::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  // Appends `# TYPE` and the _bucket/_sum/_count lines for `name` with extra labels.
  void render(std::string& out, const std::string& name, const std::string& help,
              const std::string& labels) const;
  uint64_t count() const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  explicit Metrics(std::string model_name);

  void observe_ttft(double seconds) { ttft_.observe(seconds); }
  void observe_inter_token(double seconds) { itl_.observe(seconds); }
  void observe_e2e(double seconds) { e2e_.observe(seconds); }
  void count_finished(const std::string& reason);  // engine finish reason: stop, length, abort
  void count_http(int status);

  std::string render(const EngineStats& stats) const;

 private:
  std::string labels_;  // model_name="..."
  Histogram ttft_, itl_, e2e_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> finished_;
  std::map<int, uint64_t> http_;
};

// Escapes a Prometheus label value (backslash, quote, newline).
std::string prometheus_label_escape(const std::string& v);

}  // namespace herd::server
