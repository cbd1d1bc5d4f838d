// What every HTTP route handler shares, plus the helpers they use to answer: OpenAI-style
// errors, JSON bodies, and the SSE pump that moves a RequestStream to the client.
#pragma once

#include <httplib.h>

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/common/error.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/engine_client.h"
#include "server/openai_response.h"
#include "server/request_log.h"
#include "server/server_options.h"

namespace herd::server {

struct HttpContext {
  EngineClient& client;
  const Tokenizer& tok;
  const ServerOptions& opts;
  std::string model_name;
  int max_model_len = 0;
  RequestLog& log;
  std::atomic<bool>& draining;
  // Responses a route has begun and httplib has not begun writing: a handler still running,
  // or an SSE response whose pump has not been called yet. Shutdown waits for it to reach 0
  // before stop(), after which httplib would drop an unstarted SSE response.
  std::atomic<int>& unwritten;
};

// An error a handler answers with a given status (404 model not found, ...).
struct HttpError {
  int status;
  std::string message, type, param, code;
};

void send_json(httplib::Response& res, int status, const ordered_json& body);
void send_error(httplib::Response& res, const HttpError& e);

// Parses the body as JSON (400 naming no param when it is not JSON).
nlohmann::json parse_body(const httplib::Request& req);
// 404 when the request names a model this server does not serve.
void check_model(const HttpContext& ctx, const std::string& requested);
// 400 naming `param` when the prompt leaves no room within the context length.
void check_context_length(const HttpContext& ctx, size_t prompt_len, std::optional<int> max_tokens,
                          const char* param);
int64_t unix_now();

// Runs `handler`, answering its exceptions: InvalidArgument -> 400 naming the param,
// QueueFull -> 429, HttpError -> its status, anything else -> 500 without details (the details
// go to the request log). The handler returns true when it started an SSE response (which logs
// itself when it ends); other responses are logged here.
void run_route(HttpContext& ctx, const httplib::Request& req, httplib::Response& res,
               const std::function<bool(RequestLogEntry&)>& handler);

// SSE pump. `on_start` runs once before any event (e.g. role deltas); `on_events` turns a batch
// of engine events into SSE text; `on_done` writes the tail (finish chunks, usage, [DONE]).
// A failed write (client gone) aborts the engine requests. The log entry is written when the
// response ends.
struct SseCallbacks {
  std::function<std::string()> on_start;
  std::function<std::string(std::vector<StreamEvent>&)> on_events;
  std::function<std::string()> on_done;
};
void start_sse(HttpContext& ctx, httplib::Response& res, std::shared_ptr<RequestStream> stream,
               SseCallbacks cb, RequestLogEntry log_entry);

// Waits for a non-streaming request to finish, handing every batch of events to `on_events`.
void drain_stream(RequestStream& stream,
                  const std::function<void(std::vector<StreamEvent>&)>& on_events);

// Copies a finished stream's token counts and timings into its log line.
void log_summary(RequestLogEntry& log, const StreamSummary& s);

// The tail every generation route shares: stream the run's SSE chunks (returns true: logged
// when the stream ends), or wait for it and answer with its JSON body. `Run` provides
// start_text(), on_events(events), done_text(stream), collect(events), engine_error() and
// body(stream) (ChatRun, CompletionRun); `request` is the parsed request the run refers to.
template <class Run>
bool respond_with_run(HttpContext& ctx, httplib::Response& res, bool streaming,
                      std::shared_ptr<Run> run, std::shared_ptr<RequestStream> stream,
                      RequestLogEntry& log, std::shared_ptr<const void> request) {
  if (streaming) {
    SseCallbacks cb;
    // The run refers to the parsed request: the SSE callbacks keep it alive with the run.
    cb.on_start = [run, request] { return run->start_text(); };
    cb.on_events = [run, request](std::vector<StreamEvent>& ev) { return run->on_events(ev); };
    cb.on_done = [run, request, s = stream.get()] { return run->done_text(*s); };
    start_sse(ctx, res, stream, std::move(cb), log);
    return true;
  }
  drain_stream(*stream, [&](std::vector<StreamEvent>& ev) { run->collect(ev); });
  ctx.client.release(*stream);
  log_summary(log, stream->summary());
  if (!run->engine_error().empty()) {
    log.error = run->engine_error();
    throw HttpError{500, "The engine failed the request.", "server_error", "", ""};
  }
  send_json(res, 200, run->body(*stream));
  return false;
}

bool handle_chat_completions(HttpContext& ctx, const httplib::Request& req, httplib::Response& res,
                             RequestLogEntry& log);
bool handle_completions(HttpContext& ctx, const httplib::Request& req, httplib::Response& res,
                        RequestLogEntry& log);

}  // namespace herd::server
