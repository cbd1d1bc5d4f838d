#include "server/request_stream.h"

#include "server/openai_response.h"

namespace herd::server {

namespace {
double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
}  // namespace

RequestStream::RequestStream(std::vector<std::string> request_ids, Metrics* metrics)
    : ids_(std::move(request_ids)),
      metrics_(metrics),
      start_(Clock::now()),
      finished_(ids_.size(), false),
      unfinished_(ids_.size()) {}

OutputSink RequestStream::sink_for(int prompt_index) {
  return [self = shared_from_this(), prompt_index](const Output& o) {
    self->on_output(prompt_index, o);
  };
}

void RequestStream::on_output(int prompt_index, const Output& o) {
  auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_[prompt_index]) return;  // late delta after the final one: ignore
  if (!o.token_ids.empty()) {
    if (sum_.ttft_s < 0) {
      sum_.ttft_s = seconds(now - start_);
      if (metrics_) metrics_->observe_ttft(sum_.ttft_s);
    } else if (metrics_) {
      metrics_->observe_inter_token(seconds(now - last_token_));
    }
    last_token_ = now;
  }
  if (o.finish_reason != FinishReason::kNone) {
    sum_.finish_reason = openai_finish_reason(o.finish_reason);
    if (metrics_) metrics_->count_finished(sum_.finish_reason);
  }
  if (!o.error.empty()) sum_.error = o.error;
  if (o.request_finished) {
    sum_.prompt_tokens += o.usage.prompt_tokens;
    sum_.completion_tokens += o.usage.completion_tokens;
    sum_.cached_prompt_tokens += o.usage.cached_prompt_tokens;
    finished_[prompt_index] = true;
    if (--unfinished_ == 0) {
      sum_.total_s = seconds(now - start_);
      if (metrics_) metrics_->observe_e2e(sum_.total_s);
    }
  }
  events_.push_back({prompt_index, o});
  cv_.notify_all();
  notify_locked();
}

void RequestStream::mark_failed(int prompt_index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_[prompt_index]) return;
  finished_[prompt_index] = true;
  if (--unfinished_ == 0) sum_.total_s = seconds(Clock::now() - start_);
  cv_.notify_all();
  notify_locked();
}

void RequestStream::set_notify(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = std::move(fn);
  if (!events_.empty() || unfinished_ == 0) notify_locked();
}

RequestStream::Wait RequestStream::next(std::vector<StreamEvent>& out,
                                        std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return !events_.empty() || unfinished_ == 0; });
  if (events_.empty()) return unfinished_ == 0 ? Wait::kDone : Wait::kTimeout;
  while (!events_.empty()) {
    out.push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return Wait::kEvents;
}

bool RequestStream::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unfinished_ == 0;
}

StreamSummary RequestStream::summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  StreamSummary s = sum_;
  if (unfinished_ != 0) s.total_s = seconds(Clock::now() - start_);
  return s;
}

}  // namespace herd::server
