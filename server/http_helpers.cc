#include <cctype>
#include <chrono>
#include <cstdio>

#include "engine/common/error.h"
#include "server/http_context.h"
#include "server/untrusted_json.h"

namespace herd::server {

void send_json(HttpResponse& res, int status, const ordered_json& body) {
  res.status = status;
  res.body = to_json_text(body);
  res.content_type = "application/json";
}

void send_error(HttpResponse& res, const HttpError& e) {
  send_json(res, e.status, error_body(e.message, e.type, e.param, e.code));
}

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() != name.size()) continue;
    bool eq = true;
    for (size_t i = 0; i < k.size() && eq; ++i)
      eq = std::tolower(static_cast<unsigned char>(k[i])) ==
           std::tolower(static_cast<unsigned char>(name[i]));
    if (eq) return v;
  }
  return "";
}

nlohmann::json parse_body(const HttpRequest& req) {
  // Depth-bounded, and numbers out of range are a 400 naming their field (server/untrusted_json.h).
  // nlohmann's syntax messages name the byte offset only; nothing about our process leaks.
  return parse_untrusted_json(req.body, "", "The request body");
}

void check_model(const HttpContext& ctx, const std::string& requested) {
  if (!requested.empty() && requested != ctx.model_name)
    throw HttpError{404, "The model `" + requested + "` does not exist.", "invalid_request_error",
                    "model", "model_not_found"};
}

void check_context_length(const HttpContext& ctx, size_t prompt_len, std::optional<int> max_tokens,
                          const char* param) {
  const size_t limit = static_cast<size_t>(ctx.max_model_len);
  const std::string what = std::string(param) == "messages" ? "messages" : "prompt";
  if (max_tokens && prompt_len + static_cast<size_t>(*max_tokens) > limit) {
    throw InvalidArgument(param, "This model's maximum context length is " + std::to_string(limit) +
                                     " tokens. However, you requested " +
                                     std::to_string(prompt_len + *max_tokens) + " tokens (" +
                                     std::to_string(prompt_len) + " in the " + what + ", " +
                                     std::to_string(*max_tokens) +
                                     " in the completion). Please reduce the length of the " +
                                     what + " or completion.");
  }
  if (prompt_len >= limit)
    throw InvalidArgument(param, "This model's maximum context length is " + std::to_string(limit) +
                                     " tokens. However, your " + what + " resulted in " +
                                     std::to_string(prompt_len) +
                                     " tokens. Please reduce the length of the " + what + ".");
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void answer_current_exception(HttpResponse& res, RequestLogEntry& log) {
  res.stream.reset();
  try {
    throw;
  } catch (const HttpError& e) {
    send_error(res, e);
    if (log.error.empty()) log.error = e.message;
  } catch (const InvalidArgument& e) {
    send_error(res, {400, e.what(), "invalid_request_error", e.param(), ""});
    log.error = e.what();
  } catch (const QueueFull& e) {
    send_error(res, {429, "The server is at capacity; retry later.", "rate_limit_error", "",
                     "queue_full"});
    log.error = e.what();
  } catch (const EngineUnavailable& e) {
    // A failed engine step (device fault): the process drains and exits so that a supervisor
    // restarts it; clients should retry elsewhere or later.
    send_error(res, {503, std::string("The engine is unavailable: ") + e.what(), "server_error", "",
                     "engine_unavailable"});
    res.headers.emplace_back("Retry-After", "1");
    log.error = e.what();
  } catch (const std::exception& e) {
    send_error(res, {500, "Internal server error.", "server_error", "", ""});
    log.error = e.what();
  }
}

void run_route(HttpContext& ctx, const HttpRequest& req, HttpResponse& res,
               const std::function<bool(RequestLogEntry&)>& handler) {
  RequestLogEntry log;
  log.method = req.method;
  log.path = req.path;
  auto t0 = std::chrono::steady_clock::now();
  try {
    if (handler(log)) {
      // The reply follows a stream: logged when it ends (finish_stream_reply).
      res.stream->log = log;
      res.stream->t0 = t0;
      return;
    }
  } catch (...) {
    answer_current_exception(res, log);
  }
  log.status = res.status;
  if (log.total_s == 0.0)
    log.total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ctx.client.metrics().count_http(res.status);
  ctx.log.write(log);
}

void finish_stream_reply(HttpContext& ctx, StreamReply& reply, HttpResponse* res,
                         bool client_gone) {
  ctx.client.release(*reply.stream);
  RequestLogEntry& log = reply.log;
  StreamSummary s = reply.stream->summary();
  log_summary(log, s);
  if (client_gone) {
    // SSE: the 200 went out with the headers. Plain: nobody is left to read a status; 499 is
    // what proxies log for a client that closed the request.
    log.status = reply.sse ? 200 : 499;
    log.error = "client disconnected";
  } else if (reply.sse) {
    log.status = 200;
    if (!s.error.empty()) log.error = s.error;
  } else {
    try {
      reply.on_finish(*res, log);
    } catch (...) {
      answer_current_exception(*res, log);
    }
    log.status = res->status;
  }
  if (log.total_s == 0.0)
    log.total_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - reply.t0).count();
  ctx.client.metrics().count_http(log.status);
  ctx.log.write(log);
}

void log_summary(RequestLogEntry& log, const StreamSummary& s) {
  log.prompt_tokens = s.prompt_tokens;
  log.completion_tokens = s.completion_tokens;
  log.ttft_s = s.ttft_s;
  log.total_s = s.total_s;
  log.finish_reason = s.finish_reason;
}

}  // namespace herd::server
