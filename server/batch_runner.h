// BatchRunner: answers batch lines with up to `max_in_flight` RouteCalls at once (so the engine
// batches them) through an HttpContext whose client submits at kBatchPriority. Shared by
// `herd batch` and the /v1/batches worker. Results are reported as whole output lines, in
// completion order, on the calling thread.
#pragma once

#include <atomic>
#include <functional>
#include <optional>

#include "server/batch_format.h"
#include "server/http_context.h"

namespace herd::server {

struct BatchResult {
  const BatchLine& line;
  ordered_json out;  // the output line (batch_response_line)
  bool ok = false;   // status 200: the output file; otherwise the error file
};

class BatchRunner {
 public:
  BatchRunner(HttpContext& ctx, int max_in_flight) : ctx_(ctx), max_in_flight_(max_in_flight) {}

  // Pulls lines from `next` (nullopt: no more) and reports each answer to `on_result`. Returns
  // true when every line was answered; false when `stop` turned true first (the calls still
  // in flight are aborted and not reported: a rerun answers them).
  bool run(const std::function<std::optional<BatchLine>()>& next,
           const std::function<void(const BatchResult&)>& on_result, const std::atomic<bool>& stop);

 private:
  HttpContext& ctx_;
  int max_in_flight_;
};

}  // namespace herd::server
