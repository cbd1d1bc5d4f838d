// RequestStream: the bridge between the engine thread and one HTTP/gRPC handler. The engine
// calls the sink (which must not block); a handler either waits for events (next() with a
// timeout: gRPC) or is told of them (set_notify: the event-driven HTTP transport). One stream
// may carry several engine requests (a /v1/completions call with a list of prompts); each
// event is tagged with the prompt it belongs to. Timing metrics are taken in the sink, where
// the token actually becomes available.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/api/engine.h"
#include "server/metrics.h"

namespace herd::server {

struct StreamEvent {
  int prompt_index = 0;
  Output out;
};

// What the request log and the response's usage need once the stream is done.
struct StreamSummary {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;
  double ttft_s = -1.0;  // -1: no token was produced
  double total_s = 0.0;
  std::string finish_reason;  // of the last sample that finished
  std::string error;          // engine error, if any
};

class RequestStream : public std::enable_shared_from_this<RequestStream> {
 public:
  using Clock = std::chrono::steady_clock;

  RequestStream(std::vector<std::string> request_ids, Metrics* metrics);

  // The sink for engine request `prompt_index`; it keeps the stream alive, since the engine
  // may deliver the final (abort) delta after the handler has gone. Needs a shared_ptr owner.
  OutputSink sink_for(int prompt_index);

  enum class Wait { kEvents, kTimeout, kDone };
  // Moves every event available into `out` (waiting up to `timeout` for the first). kDone means
  // every engine request has finished and no event is left.
  Wait next(std::vector<StreamEvent>& out, std::chrono::milliseconds timeout);

  const std::vector<std::string>& request_ids() const { return ids_; }
  bool done() const;
  StreamSummary summary() const;
  // Marks sub-request i finished without events (its add_request failed).
  void mark_failed(int prompt_index);
  // `fn` is called (on the engine's thread, with the stream's lock held: it must only post
  // work elsewhere, never block or call back into the stream) whenever events are queued or
  // the stream finishes; at once if events are waiting or it is done already. An empty `fn`
  // clears it: once set_notify({}) returns, no call of the old `fn` is running or will run.
  void set_notify(std::function<void()> fn);

 private:
  void on_output(int prompt_index, const Output& o);
  void notify_locked() {
    if (notify_) notify_();
  }

  std::vector<std::string> ids_;
  Metrics* metrics_;
  const Clock::time_point start_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> notify_;
  std::deque<StreamEvent> events_;
  std::vector<bool> finished_;
  size_t unfinished_;
  Clock::time_point last_token_{};
  StreamSummary sum_;
};

}  // namespace herd::server
