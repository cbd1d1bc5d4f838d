#include "server/route_call.h"

#include <chrono>
#include <vector>

#include "server/engine_client.h"

namespace herd::server {

bool is_batch_endpoint(const std::string& url) {
  return url == "/v1/chat/completions" || url == "/v1/completions";
}

RouteCall::RouteCall(HttpContext& ctx, const std::string& url, const nlohmann::json& body,
                     std::function<void()> on_ready)
    : ctx_(ctx) {
  HttpRequest req;
  req.method = "POST";
  req.target = url;
  req.path = url;
  req.body = body.dump();
  // The same handler and error mapping as the HTTP route (server/http_server.cc).
  run_route(ctx_, req, res_, [&](RequestLogEntry& log) {
    if (body.is_object() && body.contains("stream") && body["stream"].is_boolean() &&
        body["stream"].get<bool>())
      throw InvalidArgument("stream", "'stream' is not supported in a batch");
    if (url == "/v1/chat/completions") return handle_chat_completions(ctx_, req, res_, log);
    if (url == "/v1/completions") return handle_completions(ctx_, req, res_, log);
    throw InvalidArgument("url", "url must be /v1/chat/completions or /v1/completions");
  });
  if (res_.stream) {
    res_.stream->stream->set_notify(std::move(on_ready));
  } else {
    finish();
  }
}

RouteCall::~RouteCall() {
  if (done_) return;
  // Dropped before it finished (shutdown, cancel): abort and release the engine requests.
  res_.stream->stream->set_notify({});
  ctx_.client.abort(*res_.stream->stream);
  ctx_.client.release(*res_.stream->stream);
}

bool RouteCall::poll() {
  if (done_) return true;
  StreamReply& reply = *res_.stream;
  std::vector<StreamEvent> events;
  RequestStream::Wait w;
  while ((w = reply.stream->next(events, std::chrono::milliseconds(0))) ==
         RequestStream::Wait::kEvents) {
    reply.on_events(events);
    events.clear();
  }
  if (w != RequestStream::Wait::kDone) return false;
  reply.stream->set_notify({});
  // Fills the body with the route's own on_finish (or its error), logs, releases the stream.
  finish_stream_reply(ctx_, reply, &res_, false);
  finish();
  return true;
}

void RouteCall::abort() {
  if (!done_) ctx_.client.abort(*res_.stream->stream);
}

void RouteCall::finish() {
  done_ = true;
  res_.stream.reset();
  if (res_.status == 200) {
    auto j = nlohmann::json::parse(res_.body, nullptr, false);
    if (j.is_object() && j.contains("id") && j["id"].is_string())
      request_id_ = j["id"].get<std::string>();
  }
  if (request_id_.empty()) request_id_ = new_request_id("req_");
}

}  // namespace herd::server
