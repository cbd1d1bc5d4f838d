// Reads a streamed /v1/completions response (OpenAI SSE: one JSON chunk per event, then
// "[DONE]") into a StreamRecorder: chunks whose choices carry text are timed, the usage chunk
// (stream_options.include_usage) gives the token counts, an error event fails the request.
#pragma once

#include <string_view>

#include "benchmarks/client/sse_parser.h"
#include "benchmarks/client/stream_recorder.h"

namespace herd::bench {

class CompletionStreamReader {
 public:
  explicit CompletionStreamReader(StreamRecorder& rec) : rec_(rec) {}
  // `bytes` arrived at time t (seconds, now_s() clock).
  void feed(std::string_view bytes, double t);
  bool done() const { return done_; }  // "[DONE]" was seen

 private:
  void payload(const std::string& data, double t);

  SseParser sse_;
  StreamRecorder& rec_;
  bool done_ = false;
};

}  // namespace herd::bench
