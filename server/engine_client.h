// EngineClient: how HTTP and gRPC handlers talk to the Engine. It submits engine requests
// feeding one RequestStream, remembers which requests are live (so that shutdown can abort
// the ones still running at its deadline), and aborts them when a client goes away.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/api/engine.h"
#include "server/metrics.h"
#include "server/request_stream.h"

namespace herd::server {

class EngineClient {
 public:
  // `priority`: given to every request submitted through this client (Request::priority; lower
  // runs first). Interactive routes use 0; background batches a larger value (kBatchPriority),
  // so the scheduler admits them only after every waiting interactive request.
  EngineClient(Engine& engine, Metrics& metrics, int priority = 0)
      : engine_(engine), metrics_(metrics), priority_(priority) {}

  // Queues one engine request per element. Propagates InvalidArgument / QueueFull from the
  // engine after aborting the ones of this call that were already queued.
  std::shared_ptr<RequestStream> submit(std::vector<Request> reqs);
  // Aborts every unfinished engine request of the stream (client went away, deadline).
  void abort(const RequestStream& stream);
  // Aborts everything still live (the shutdown deadline passed).
  void abort_all();
  // Streams submitted and not yet released.
  size_t live() const;
  // The handler is done with the stream (after it finished or was aborted).
  void release(const RequestStream& stream);

  Engine& engine() { return engine_; }
  Metrics& metrics() { return metrics_; }

 private:
  Engine& engine_;
  Metrics& metrics_;
  int priority_ = 0;
  mutable std::mutex mu_;
  std::map<const RequestStream*, std::weak_ptr<RequestStream>> live_;
};

// A fresh request id: prefix + 32 hex digits (random).
std::string new_request_id(const std::string& prefix);

}  // namespace herd::server
