#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <csignal>

#include "engine/common/error.h"
#include "engine/tokenizer/chat_format.h"
#include "server/auth.h"
#include "server/http_context.h"
#include "server/openai_request.h"
#include "server/task_queue.h"

namespace herd::server {

namespace {
using Clock = std::chrono::steady_clock;

std::string model_of(const nlohmann::json& body) {
  auto it = body.find("model");
  if (it == body.end() || it->is_null()) return "";
  if (!it->is_string()) throw InvalidArgument("model", "'model' must be a string");
  return it->get<std::string>();
}
}  // namespace

std::string default_model_name(const std::string& model_dir) {
  std::string d = model_dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  auto slash = d.find_last_of('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

HttpServer::HttpServer(EngineClient& client, const ServerOptions& opts, std::string model_name,
                       RequestLog& log)
    : client_(client), opts_(opts), model_name_(std::move(model_name)), log_(log) {
  ctx_ = std::unique_ptr<HttpContext>(new HttpContext{client_, client_.engine().tokenizer(), opts_,
                                                      model_name_, client_.engine().max_model_len(),
                                                      log_, draining_, unwritten_});
  svr_ = std::make_unique<httplib::Server>();
}

HttpServer::~HttpServer() { shutdown(std::chrono::milliseconds(0)); }

void HttpServer::install_routes() {
  HttpContext& ctx = *ctx_;
  auto route = [&ctx](bool (*fn)(HttpContext&, const httplib::Request&, httplib::Response&,
                                 RequestLogEntry&)) {
    return [&ctx, fn](const httplib::Request& req, httplib::Response& res) {
      run_route(ctx, req, res, [&](RequestLogEntry& log) { return fn(ctx, req, res, log); });
    };
  };
  svr_->Post("/v1/chat/completions", route(handle_chat_completions));
  svr_->Post("/v1/completions", route(handle_completions));

  svr_->Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    ordered_json m;
    m["id"] = model_name_;
    m["object"] = "model";
    m["created"] = unix_now();
    m["owned_by"] = "herd";
    m["root"] = model_name_;
    m["parent"] = nullptr;
    m["max_model_len"] = ctx_->max_model_len;
    send_json(res, 200, ordered_json{{"object", "list"}, {"data", ordered_json::array({m})}});
  });

  svr_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.status = draining_ ? 503 : 200;
  });

  svr_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(client_.metrics().render(client_.engine().stats()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });

  svr_->Post("/tokenize", [&ctx](const httplib::Request& req, httplib::Response& res) {
    run_route(ctx, req, res, [&](RequestLogEntry&) {
      nlohmann::json body = parse_body(req);
      TokenizeRequest t = parse_tokenize_request(body);
      check_model(ctx, model_of(body));
      std::vector<int32_t> ids;
      if (t.add_special_tokens && ctx.tok.bos_id() >= 0 && !ctx.tok.adds_bos())
        ids.push_back(ctx.tok.bos_id());
      std::vector<int32_t> text_ids;
      if (t.is_chat) {
        ChatFormatOptions fo;
        fo.tools = t.tools;
        fo.add_generation_prompt = t.add_generation_prompt;
        text_ids = encode_llama31_chat(ctx.tok, t.messages, fo);
      } else {
        text_ids = ctx.tok.encode(t.prompt);
      }
      ids.insert(ids.end(), text_ids.begin(), text_ids.end());
      ordered_json out;
      out["count"] = ids.size();
      out["max_model_len"] = ctx.max_model_len;
      out["tokens"] = ids;
      if (t.return_token_strs) {
        ordered_json strs = ordered_json::array();
        for (int32_t id : ids) strs.push_back(ctx.tok.token_bytes(id));
        out["token_strs"] = strs;
      } else {
        out["token_strs"] = nullptr;
      }
      send_json(res, 200, out);
      return false;
    });
  });

  svr_->Post("/detokenize", [&ctx](const httplib::Request& req, httplib::Response& res) {
    run_route(ctx, req, res, [&](RequestLogEntry&) {
      nlohmann::json body = parse_body(req);
      std::vector<int32_t> ids = parse_detokenize_request(body);
      check_model(ctx, model_of(body));
      for (int32_t t : ids)
        if (t >= ctx.tok.vocab_size())
          throw InvalidArgument("tokens",
                                "token id " + std::to_string(t) + " is outside the vocabulary");
      send_json(res, 200, ordered_json{{"prompt", ctx.tok.decode(ids)}});
      return false;
    });
  });
}

int HttpServer::start() {
  // A client that vanishes mid-write must fail the write (EPIPE), not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  svr_->new_task_queue = [n = opts_.max_connections] { return new ElasticTaskQueue(n); };
  svr_->set_payload_max_length(opts_.max_body_bytes);
  svr_->set_keep_alive_max_count(1000);
  svr_->set_tcp_nodelay(true);
  // httplib 0.11.4 listens with a backlog of 5 and offers no setting for it; remember the
  // listening socket so that start() can raise the backlog (a second listen() on Linux does).
  auto listen_fd = std::make_shared<int>(-1);
  svr_->set_socket_options([listen_fd](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    *listen_fd = sock;
  });

  HttpContext& ctx = *ctx_;
  svr_->set_pre_routing_handler([this, &ctx](const httplib::Request& req, httplib::Response& res) {
    // SSE must not be gzip'ed (httplib 0.11 would buffer the compressed stream), and small JSON
    // bodies gain nothing from it; the request object is ours to edit (httplib owns it
    // non-const).
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
    if (!opts_.api_key.empty() && !route_is_public(req.path, opts_.metrics_public) &&
        !bearer_matches(req.get_header_value("Authorization"), opts_.api_key)) {
      send_error(res, {401, "Invalid or missing API key (Authorization: Bearer KEY).",
                       "invalid_request_error", "", "invalid_api_key"});
      ctx.client.metrics().count_http(401);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (draining_ && req.path != "/health") {
      send_error(res, {503, "The server is shutting down.", "server_error", "", ""});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr_->set_error_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.status == 503) return;  // a handler already answered
    if (res.status == 404) {
      send_error(res, {404, "Not found: " + req.method + " " + req.path, "invalid_request_error",
                       "", "not_found"});
    } else if (res.status == 413) {
      send_error(res, {413,
                       "The request body is larger than the limit of " +
                           std::to_string(ctx.opts.max_body_bytes) + " bytes.",
                       "invalid_request_error", "", "request_too_large"});
    } else if (res.status >= 400) {
      send_error(res, {res.status, "Bad request.", "invalid_request_error", "", ""});
    }
    ctx.client.metrics().count_http(res.status);
  });
  svr_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send_error(res, {500, "Internal server error.", "server_error", "", ""});
      });
  install_routes();

  port_ = opts_.port == 0 ? svr_->bind_to_any_port(opts_.host)
                          : (svr_->bind_to_port(opts_.host, opts_.port) ? opts_.port : -1);
  if (port_ < 0)
    throw Error("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) +
                " (address in use or not available)");
  if (*listen_fd >= 0) ::listen(*listen_fd, SOMAXCONN);
  thread_ = std::thread([this] { svr_->listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs, so a shutdown() right after
  // start() would hang in join(): return only once the loop is up (it is bound already).
  for (int i = 0; i < 10000 && !svr_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port_;
}

void HttpServer::shutdown(std::chrono::milliseconds deadline) {
  if (stopped_) return;
  stopped_ = true;
  draining_ = true;
  if (!thread_.joinable()) return;
  auto until = Clock::now() + deadline;
  // httplib never starts writing a chunked (SSE) response once stop() ran, so first let every
  // handler already past the draining check finish and every SSE pump start (new requests get
  // 503 meanwhile), then close the listening socket.
  while (unwritten_ > 0 && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  svr_->stop();  // closes the listening socket; listen_after_bind then joins the workers
  while (client_.live() > 0 && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  client_.abort_all();
  thread_.join();
}

}  // namespace herd::server
