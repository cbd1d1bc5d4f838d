#include "benchmarks/client/stream_recorder.h"

#include <chrono>

namespace herd::bench {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void StreamRecorder::on_content(double t, std::string_view text) {
  if (out_.content_chunks == 0)
    out_.ttft = t - start_;
  else
    out_.itl.push_back(t - last_);
  last_ = t;
  ++out_.content_chunks;
  out_.generated_text += text;
}

void StreamRecorder::on_usage(int prompt_tokens, int completion_tokens) {
  out_.prompt_tokens = prompt_tokens;
  out_.output_tokens = completion_tokens;
}

void StreamRecorder::on_error(const std::string& message) {
  if (out_.error.empty()) out_.error = message.empty() ? "unknown error" : message;
}

RequestOutput StreamRecorder::finish(double t) {
  out_.latency = t - start_;
  if (out_.error.empty() && out_.content_chunks == 0)
    out_.error = "the stream ended without any generated text";
  out_.success = out_.error.empty();
  return std::move(out_);
}

}  // namespace herd::bench
