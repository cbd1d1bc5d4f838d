#include "server/http_server.h"

#include <csignal>
#include <thread>

#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/tokenizer/chat_format.h"
#include "server/auth.h"
#include "server/batch_routes.h"
#include "server/batch_service.h"
#include "server/http_context.h"
#include "server/http_transport.h"
#include "server/openai_request.h"

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
                                                      log_, draining_});
  transport_ = std::make_unique<HttpTransport>(
      *ctx_, [this](const HttpRequest& req) { return precheck(req); },
      [this](const HttpRequest& req, HttpResponse& res) { route(req, res); });
  if (!opts_.state_dir.empty()) {
    batches_ = std::make_unique<BatchService>(*ctx_, opts_.state_dir, opts_.batch_max_in_flight,
                                              opts_.batch_expiry_s);
    batches_->start();
  }
}

HttpServer::~HttpServer() { shutdown(std::chrono::milliseconds(0)); }

// Runs as soon as a request's headers are in, before its body is read.
std::optional<HttpResponse> HttpServer::precheck(const HttpRequest& req) {
  HttpResponse res;
  if (!opts_.api_key.empty() && !route_is_public(req.path, opts_.metrics_public) &&
      !bearer_matches(req.header("Authorization"), opts_.api_key)) {
    send_error(res, {401, "Invalid or missing API key (Authorization: Bearer KEY).",
                     "invalid_request_error", "", "invalid_api_key"});
    return res;
  }
  if (draining_ && req.path != "/health") {
    send_error(res, {503, "The server is shutting down.", "server_error", "", ""});
    return res;
  }
  return std::nullopt;
}

namespace {
ordered_json model_object(const HttpContext& ctx) {
  ordered_json m;
  m["id"] = ctx.model_name;
  m["object"] = "model";
  m["created"] = unix_now();
  m["owned_by"] = "herd";
  m["root"] = ctx.model_name;
  m["parent"] = nullptr;
  m["max_model_len"] = ctx.max_model_len;
  return m;
}
}  // namespace

void HttpServer::route(const HttpRequest& req, HttpResponse& res) {
  HttpContext& ctx = *ctx_;
  const std::string& path = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  static const std::string kModelPrefix = "/v1/models/";
  // Routes answered here (no request log line, as before); count their status.
  auto simple = [&](auto&& fn) {
    try {
      fn();
    } catch (...) {
      RequestLogEntry ignored;
      answer_current_exception(res, ignored);
    }
    ctx.client.metrics().count_http(res.status);
  };
  // A reward model scores (/pooling) and never generates.
  if (post && (path == "/v1/chat/completions" || path == "/v1/completions") &&
      client_.engine().model_config().is_reward_model()) {
    run_route(ctx, req, res, [&](RequestLogEntry&) -> bool {
      throw InvalidArgument("model", "the model `" + ctx.model_name +
                                         "` is a reward model: it scores (POST /pooling) and "
                                         "does not generate");
    });
  } else if (post && path == "/pooling") {
    run_route(ctx, req, res,
              [&](RequestLogEntry& log) { return handle_pooling(ctx, req, res, log); });
  } else if (post && path == "/v1/chat/completions") {
    run_route(ctx, req, res,
              [&](RequestLogEntry& log) { return handle_chat_completions(ctx, req, res, log); });
  } else if (post && path == "/v1/completions") {
    run_route(ctx, req, res,
              [&](RequestLogEntry& log) { return handle_completions(ctx, req, res, log); });
  } else if (get && path == "/v1/models") {
    simple([&] {
      send_json(
          res, 200,
          ordered_json{{"object", "list"}, {"data", ordered_json::array({model_object(ctx)})}});
    });
  } else if (get && path.rfind(kModelPrefix, 0) == 0) {
    // GET /v1/models/{id} (the openai clients' models.retrieve).
    simple([&] {
      std::string id = path.substr(kModelPrefix.size());
      if (id != ctx.model_name)
        throw HttpError{404, "The model `" + id + "` does not exist.", "invalid_request_error",
                        "model", "model_not_found"};
      send_json(res, 200, model_object(ctx));
    });
  } else if (get && path == "/health") {
    // 503 while draining, or with the reason once the engine failed a step (the orchestrator's
    // probe sees it; `herd serve` then drains and exits non-zero).
    simple([&] {
      const EngineHealth h = client_.engine().health();
      res.status = draining_ || !h.healthy ? 503 : 200;
      if (!h.healthy)
        send_json(res, 503, ordered_json{{"status", "unhealthy"}, {"reason", h.reason}});
    });
  } else if (get && path == "/metrics") {
    simple([&] {
      res.status = 200;
      res.body = client_.metrics().render(client_.engine().stats());
      res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    });
  } else if (post && path == "/tokenize") {
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
  } else if (post && path == "/detokenize") {
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
  } else if (is_batch_api_path(path)) {
    run_route(ctx, req, res, [&](RequestLogEntry&) {
      handle_batch_api(ctx, batches_.get(), req, res);
      return false;
    });
  } else {
    simple([&] {
      throw HttpError{404, "Not found: " + req.method + " " + path, "invalid_request_error", "",
                      "not_found"};
    });
  }
}

int HttpServer::start() {
  // A client that vanishes mid-write must fail the write (EPIPE), not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  port_ = transport_->start();
  return port_;
}

void HttpServer::shutdown(std::chrono::milliseconds deadline) {
  if (stopped_) return;
  stopped_ = true;
  draining_ = true;
  // Batch requests are not waited for: they are aborted now and rerun after a restart.
  if (batches_) batches_->stop();
  if (port_ < 0) return;
  auto until = Clock::now() + deadline;
  // New connections are refused; requests on open ones get 503 (precheck). Let the requests
  // in progress finish until the deadline.
  transport_->close_listener();
  while ((transport_->busy() > 0 || client_.live() > 0) && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  client_.abort_all();
  // The aborted streams end with their final chunks ([DONE], or a 503 for a plain reply);
  // give their connections a moment to write them.
  auto grace = Clock::now() + std::chrono::seconds(5);
  while (transport_->busy() > 0 && Clock::now() < grace)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  transport_->stop();
}

}  // namespace herd::server
