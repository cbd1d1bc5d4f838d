// Feedback of a long offline job (rs, batch): a progress line on a terminal (done/total,
// items/s, output tokens/s, ETA), redrawn at most twice a second, and a final JSON summary.
// Items a resumed run skips count as done but not toward the rates.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace herd {

class JobProgress {
 public:
  using Clock = std::function<double()>;  // seconds, monotonic

  // `out` gets the progress line only when `interactive` (callers pass isatty(fileno(out))).
  // `total` = items in the input (-1 when unknown); `resumed` = items already done by an
  // earlier run.
  JobProgress(int64_t total, int64_t resumed, FILE* out, bool interactive, Clock clock = {});

  // One item finished (or failed), with the output tokens it produced. Thread-safe.
  void add_done(int64_t output_tokens);
  void add_failed();

  // Counters and rates so far: done, failed, resumed, total, elapsed_s, items_per_s,
  // output_tokens, output_tokens_per_s, and eta_s when total is known.
  nlohmann::json summary() const;
  // The line shown on a terminal, e.g. "37/100 done (2 failed) 3.1 items/s 412 tok/s ETA 20s".
  std::string line() const;
  // Ends the progress line (newline) on a terminal.
  void finish();

 private:
  void maybe_draw_locked();
  nlohmann::json summary_locked() const;
  std::string line_locked() const;

  int64_t total_;
  int64_t resumed_;
  FILE* out_;
  bool interactive_;
  Clock clock_;
  double start_s_;
  double last_draw_s_ = -1;
  mutable std::mutex mu_;
  int64_t done_ = 0;  // this run only
  int64_t failed_ = 0;
  int64_t output_tokens_ = 0;
};

}  // namespace herd
