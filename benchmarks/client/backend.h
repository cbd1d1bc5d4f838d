// A serving endpoint the benchmark talks to (herd's OpenAI HTTP routes or its gRPC service).
// send() is called from many threads at once.
#pragma once

#include <string>
#include <vector>

#include "benchmarks/client/stream_recorder.h"
#include "benchmarks/client/workload.h"

namespace herd::bench {

class Backend {
 public:
  virtual ~Backend() = default;
  // Recorded in the results ("backend").
  virtual std::string name() const = 0;
  // The server's token ids for `text`, without BOS. Throws herd::Error on failure.
  virtual std::vector<int32_t> tokenize(const std::string& text) = 0;
  // Streams one request with ignore_eos and max_tokens = output_len, timing it from just
  // before the request goes out. Never throws: failures are in the returned output.
  virtual RequestOutput send(const BenchRequest& req) = 0;
};

}  // namespace herd::bench
