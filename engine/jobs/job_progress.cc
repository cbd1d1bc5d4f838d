#include "engine/jobs/job_progress.h"

#include <cmath>

namespace herd {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

JobProgress::JobProgress(int64_t total, int64_t resumed, FILE* out, bool interactive, Clock clock)
    : total_(total),
      resumed_(resumed),
      out_(out),
      interactive_(interactive && out != nullptr),
      clock_(clock ? std::move(clock) : Clock(steady_seconds)),
      start_s_(clock_()) {}

void JobProgress::add_done(int64_t output_tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  ++done_;
  output_tokens_ += output_tokens;
  maybe_draw_locked();
}

void JobProgress::add_failed() {
  std::lock_guard<std::mutex> lock(mu_);
  ++failed_;
  maybe_draw_locked();
}

nlohmann::json JobProgress::summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  return summary_locked();
}

nlohmann::json JobProgress::summary_locked() const {
  const double elapsed = std::max(0.0, clock_() - start_s_);
  const int64_t finished = done_ + failed_;
  nlohmann::json s = {{"done", resumed_ + done_}, {"failed", failed_},
                      {"resumed", resumed_},      {"total", total_},
                      {"elapsed_s", elapsed},     {"output_tokens", output_tokens_}};
  const double rate = elapsed > 0 ? double(finished) / elapsed : 0.0;
  s["items_per_s"] = rate;
  s["output_tokens_per_s"] = elapsed > 0 ? double(output_tokens_) / elapsed : 0.0;
  if (total_ >= 0) {
    const int64_t left = std::max<int64_t>(0, total_ - resumed_ - finished);
    if (left == 0) {
      s["eta_s"] = 0.0;
    } else if (rate > 0) {
      s["eta_s"] = double(left) / rate;
    } else {
      s["eta_s"] = nullptr;  // unknown until an item finishes
    }
  }
  return s;
}

std::string JobProgress::line() const {
  std::lock_guard<std::mutex> lock(mu_);
  return line_locked();
}

std::string JobProgress::line_locked() const {
  const nlohmann::json s = summary_locked();
  std::string out = std::to_string(s["done"].get<int64_t>());
  if (total_ >= 0) out.append("/").append(std::to_string(total_));
  out.append(" done");
  if (failed_ > 0) out.append(" (").append(std::to_string(failed_)).append(" failed)");
  out.append(" ").append(fixed(s["items_per_s"].get<double>(), 2)).append(" items/s ");
  out.append(fixed(s["output_tokens_per_s"].get<double>(), 1)).append(" tok/s");
  if (s.contains("eta_s") && s["eta_s"].is_number()) {
    out.append(" ETA ").append(std::to_string(std::llround(s["eta_s"].get<double>()))).append("s");
  }
  return out;
}

void JobProgress::maybe_draw_locked() {
  if (!interactive_) return;
  const double now = clock_();
  if (last_draw_s_ >= 0 && now - last_draw_s_ < 0.5) return;
  last_draw_s_ = now;
  const std::string text = line_locked();
  std::fprintf(out_, "\r\033[K%s", text.c_str());
  std::fflush(out_);
}

void JobProgress::finish() {
  if (!interactive_) return;
  const std::string text = line();
  std::fprintf(out_, "\r\033[K%s\n", text.c_str());
  std::fflush(out_);
}

}  // namespace herd
