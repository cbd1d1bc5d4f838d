// What every HTTP route handler shares, plus the helpers they use to answer: OpenAI-style
// errors, JSON bodies, and the replies that follow a RequestStream (SSE or one JSON body).
// Nothing here knows the transport (server/http_transport.cc): handlers see HttpRequest and
// fill an HttpResponse.
#pragma once

#include <atomic>
#include <chrono>
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
};

// One parsed HTTP request (headers complete; body read unless a pre-check answered first).
struct HttpRequest {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;    // target without the query
  int version = 11;    // 10: HTTP/1.0, 11: HTTP/1.1
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The first header named `name` (case-insensitive); "" when absent.
  std::string header(std::string_view name) const;
};

struct HttpResponse;

// A reply that follows an engine RequestStream. The transport watches the stream (without a
// thread per stream: RequestStream::set_notify) and the client's socket (a disconnect aborts
// the engine requests). SSE: on_start's text, then on_events' text per batch of events, then
// on_done's tail. Plain (non-streaming): on_events collects, and once the stream is done
// on_finish fills the response (it may throw HttpError).
struct StreamReply {
  std::shared_ptr<RequestStream> stream;
  bool sse = false;
  std::function<std::string()> on_start;
  std::function<std::string(std::vector<StreamEvent>&)> on_events;
  std::function<std::string()> on_done;
  std::function<void(HttpResponse&, RequestLogEntry&)> on_finish;
  RequestLogEntry log;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<StreamReply> stream;  // set: the reply follows this stream (see above)
};

// An error a handler answers with a given status (404 model not found, ...).
struct HttpError {
  int status;
  std::string message, type, param, code;
};

void send_json(HttpResponse& res, int status, const ordered_json& body);
void send_error(HttpResponse& res, const HttpError& e);

// Parses the body as JSON (400 naming no param when it is not JSON).
nlohmann::json parse_body(const HttpRequest& req);
// 404 when the request names a model this server does not serve.
void check_model(const HttpContext& ctx, const std::string& requested);
// 400 naming `param` when the prompt leaves no room within the context length.
void check_context_length(const HttpContext& ctx, size_t prompt_len, std::optional<int> max_tokens,
                          const char* param);
int64_t unix_now();

// Runs `handler`, answering its exceptions: InvalidArgument -> 400 naming the param,
// QueueFull -> 429, HttpError -> its status, anything else -> 500 without details (the details
// go to the request log). The handler returns true when it set res.stream (the reply logs
// itself when it ends: finish_stream_reply); other responses are logged here.
void run_route(HttpContext& ctx, const HttpRequest& req, HttpResponse& res,
               const std::function<bool(RequestLogEntry&)>& handler);

// Fills `res` with the OpenAI error the current exception maps to (see run_route) and notes
// it in `log`. Call from a catch block.
void answer_current_exception(HttpResponse& res, RequestLogEntry& log);

// The transport calls this once a StreamReply ends: the stream is done, or the client went
// away (`client_gone`; the engine requests were aborted and the stream may still be running).
// Releases the stream, fills `res` for a plain reply (nullptr for SSE), writes the log line and
// counts the status.
void finish_stream_reply(HttpContext& ctx, StreamReply& reply, HttpResponse* res, bool client_gone);

// Copies a finished stream's token counts and timings into its log line.
void log_summary(RequestLogEntry& log, const StreamSummary& s);

// The tail every generation route shares: stream the run's SSE chunks (returns true: logged
// when the stream ends), or wait for it and answer with its JSON body. `Run` provides
// start_text(), on_events(events), done_text(stream), collect(events), engine_error() and
// body(stream) (ChatRun, CompletionRun); `request` is the parsed request the run refers to.
template <class Run>
bool respond_with_run(HttpContext& ctx, HttpResponse& res, bool streaming, std::shared_ptr<Run> run,
                      std::shared_ptr<RequestStream> stream, RequestLogEntry& log,
                      std::shared_ptr<const void> request) {
  auto reply = std::make_shared<StreamReply>();
  reply->stream = stream;
  reply->sse = streaming;
  reply->log = log;
  // The run refers to the parsed request: the callbacks keep it alive with the run.
  if (streaming) {
    reply->on_start = [run, request] { return run->start_text(); };
    reply->on_events = [run, request](std::vector<StreamEvent>& ev) { return run->on_events(ev); };
    reply->on_done = [run, request, s = stream.get()] { return run->done_text(*s); };
  } else {
    reply->on_events = [run, request](std::vector<StreamEvent>& ev) {
      run->collect(ev);
      return std::string();
    };
    reply->on_finish = [run, request, s = stream.get(), &ctx](HttpResponse& r, RequestLogEntry& l) {
      if (!run->engine_error().empty()) {
        l.error = run->engine_error();
        throw HttpError{500, "The engine failed the request.", "server_error", "", ""};
      }
      // Truncated text is not a success: the only aborts a plain reply sees are the shutdown
      // deadline's (a client that went away gets no reply at all).
      if (s->summary().finish_reason == "abort")
        throw HttpError{503,
                        ctx.draining ? "The server shut down before the request finished."
                                     : "The request was aborted before it finished.",
                        "server_error", "", ""};
      send_json(r, 200, run->body(*s));
    };
  }
  res.stream = std::move(reply);
  return true;
}

bool handle_chat_completions(HttpContext& ctx, const HttpRequest& req, HttpResponse& res,
                             RequestLogEntry& log);
bool handle_completions(HttpContext& ctx, const HttpRequest& req, HttpResponse& res,
                        RequestLogEntry& log);
// POST /pooling (server/pooling.cc): a reward model's scores.
bool handle_pooling(HttpContext& ctx, const HttpRequest& req, HttpResponse& res,
                    RequestLogEntry& log);

}  // namespace herd::server
