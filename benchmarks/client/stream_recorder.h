// What one benchmark request measured, and the recorder that builds it from stream events.
// Timing follows vLLM's `bench serve`: TTFT is send -> first chunk carrying generated text, ITL
// the gaps between consecutive such chunks (a chunk holding several tokens counts once, as in
// vLLM; TPOT later divides by the server's token count instead). E2EL runs to the end of the
// stream, so it includes the final finish/usage chunks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace herd::bench {

// Seconds on a monotonic clock; only differences mean anything.
double now_s();

struct RequestOutput {
  bool success = false;
  std::string error;
  double ttft = 0;          // seconds
  double latency = 0;       // seconds, send -> end of stream
  std::vector<double> itl;  // seconds
  int content_chunks = 0;
  int prompt_tokens = -1;  // the server's usage; -1 when it sent none
  int output_tokens = -1;
  std::string generated_text;
};

class StreamRecorder {
 public:
  explicit StreamRecorder(double start) : start_(start) {}
  void on_content(double t, std::string_view text);
  void on_usage(int prompt_tokens, int completion_tokens);
  void on_error(const std::string& message);  // the first error is kept
  bool has_error() const { return !out_.error.empty(); }
  // Ends the request at time t. It succeeded when no error was seen and at least one content
  // chunk arrived (without one there is no TTFT to report).
  RequestOutput finish(double t);

 private:
  double start_;
  double last_ = 0;
  RequestOutput out_;
};

}  // namespace herd::bench
