// RouteCall: one OpenAI request (POST /v1/chat/completions or /v1/completions) executed in
// process by the HTTP route's own handler (parsing, validation, engine submit, response body),
// so that a batch line is answered exactly as the HTTP route would answer it; only the socket
// is missing. Used by `herd batch` and the /v1/batches worker (server/batch_runner.h).
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "server/http_context.h"

namespace herd::server {

// The endpoints a batch may call (OpenAI batch `url` / `endpoint`).
bool is_batch_endpoint(const std::string& url);

class RouteCall {
 public:
  // Starts the request: parses `body` (a JSON object) with the route's parser and submits it
  // through ctx.client. Never throws for a bad request: the error response is the result.
  // `on_ready` is called (from the engine's thread: it must not block) when events are waiting
  // or the request finished; poll() does the work.
  RouteCall(HttpContext& ctx, const std::string& url, const nlohmann::json& body,
            std::function<void()> on_ready);
  ~RouteCall();
  RouteCall(const RouteCall&) = delete;
  RouteCall& operator=(const RouteCall&) = delete;

  // Consumes the events waiting; true once the response is complete (status() and body()).
  bool poll();
  // Aborts the engine requests (the response then is the route's 503).
  void abort();

  int status() const { return res_.status; }
  const std::string& body() const { return res_.body; }
  // The response's `id` (chatcmpl-..., cmpl-...), or a fresh req_... id for an error.
  const std::string& request_id() const { return request_id_; }

 private:
  void finish();

  HttpContext& ctx_;
  HttpResponse res_;
  std::string request_id_;
  bool done_ = false;
};

}  // namespace herd::server
