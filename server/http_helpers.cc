#include <chrono>
#include <cstdio>

#include "engine/common/error.h"
#include "server/http_context.h"
#include "server/untrusted_json.h"

namespace herd::server {

void send_json(httplib::Response& res, int status, const ordered_json& body) {
  res.status = status;
  res.set_content(to_json_text(body), "application/json");
}

void send_error(httplib::Response& res, const HttpError& e) {
  send_json(res, e.status, error_body(e.message, e.type, e.param, e.code));
}

nlohmann::json parse_body(const httplib::Request& req) {
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

void run_route(HttpContext& ctx, const httplib::Request& req, httplib::Response& res,
               const std::function<bool(RequestLogEntry&)>& handler) {
  RequestLogEntry log;
  log.method = req.method;
  log.path = req.path;
  auto t0 = std::chrono::steady_clock::now();
  ++ctx.unwritten;
  try {
    if (handler(log)) return;  // SSE: logged when the stream ends; unwritten drops in its pump
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
  } catch (const std::exception& e) {
    send_error(res, {500, "Internal server error.", "server_error", "", ""});
    log.error = e.what();
  }
  --ctx.unwritten;
  log.status = res.status;
  if (log.total_s == 0.0)
    log.total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ctx.client.metrics().count_http(res.status);
  ctx.log.write(log);
}

void log_summary(RequestLogEntry& log, const StreamSummary& s) {
  log.prompt_tokens = s.prompt_tokens;
  log.completion_tokens = s.completion_tokens;
  log.ttft_s = s.ttft_s;
  log.total_s = s.total_s;
  log.finish_reason = s.finish_reason;
}

void drain_stream(RequestStream& stream,
                  const std::function<void(std::vector<StreamEvent>&)>& on_events) {
  std::vector<StreamEvent> events;
  for (;;) {
    events.clear();
    auto w = stream.next(events, std::chrono::milliseconds(500));
    if (w == RequestStream::Wait::kDone) return;
    if (w == RequestStream::Wait::kEvents) on_events(events);
  }
}

void start_sse(HttpContext& ctx, httplib::Response& res, std::shared_ptr<RequestStream> stream,
               SseCallbacks cb, RequestLogEntry log_entry) {
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  auto heartbeat = std::chrono::duration<double>(ctx.opts.heartbeat_s);
  // The pump counts as unwritten until httplib first calls it (or releases it uncalled).
  auto counted = std::make_shared<std::atomic<bool>>(true);
  auto written = [&ctx, counted] {
    if (counted->exchange(false)) --ctx.unwritten;
  };
  auto provider = [&ctx, stream, cb, heartbeat, written](size_t, httplib::DataSink& sink) {
    written();
    auto last_write = std::chrono::steady_clock::now();
    auto write = [&](const std::string& text) {
      if (text.empty()) return true;
      last_write = std::chrono::steady_clock::now();
      return sink.write(text.data(), text.size());
    };
    if (!write(cb.on_start())) {
      ctx.client.abort(*stream);
      return false;
    }
    std::vector<StreamEvent> events;
    for (;;) {
      events.clear();
      auto w = stream->next(events, std::chrono::milliseconds(100));
      std::string text;
      if (w == RequestStream::Wait::kDone) {
        if (!write(cb.on_done())) return false;
        sink.done();
        return true;
      }
      const auto since_write = std::chrono::steady_clock::now() - last_write;
      if (w == RequestStream::Wait::kEvents) {
        text = cb.on_events(events);
        // Tokens without visible text (special tokens) write nothing, and a dead peer is only
        // noticed on a write: probe at least once a second while tokens flow, so that a
        // disconnected client's KV blocks are freed within about a second.
        if (text.empty() && since_write > std::chrono::seconds(1)) text = ": keep-alive\n\n";
      } else if (since_write > heartbeat) {
        text = ": keep-alive\n\n";  // SSE comment: clients ignore it; a dead peer fails the write
      }
      if (!write(text)) {
        ctx.client.abort(*stream);  // the client went away: free its KV blocks now
        return false;
      }
    }
  };
  auto releaser = [&ctx, stream, log_entry, written](bool success) mutable {
    written();
    if (!stream->done()) {
      ctx.client.abort(*stream);
      // The engine applies the abort at its next step; wait (bounded) for the final deltas so
      // that the log line has the tokens the request really used.
      std::vector<StreamEvent> rest;
      for (int i = 0; i < 40 && !stream->done(); ++i)
        stream->next(rest, std::chrono::milliseconds(50));
    }
    ctx.client.release(*stream);
    StreamSummary s = stream->summary();
    log_entry.status = 200;
    log_summary(log_entry, s);
    if (!success)
      log_entry.error = "client disconnected";
    else if (!s.error.empty())
      log_entry.error = s.error;
    ctx.client.metrics().count_http(200);
    ctx.log.write(log_entry);
  };
  res.set_chunked_content_provider("text/event-stream", provider, releaser);
}

}  // namespace herd::server
