// HttpServer: the OpenAI-compatible HTTP front end over one Engine: the routes, the API-key
// and draining checks. The sockets are HttpTransport's (server/http_transport.h). start()
// binds and serves from background threads; shutdown() drains gracefully (see below).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "engine/api/engine.h"
#include "server/engine_client.h"
#include "server/metrics.h"
#include "server/request_log.h"
#include "server/server_options.h"

namespace herd::server {

struct HttpContext;
struct HttpRequest;
struct HttpResponse;
class HttpTransport;
class BatchService;

class HttpServer {
 public:
  // `client` and `log` outlive the server; model_name is what /v1/models lists.
  HttpServer(EngineClient& client, const ServerOptions& opts, std::string model_name,
             RequestLog& log);
  ~HttpServer();

  // Binds opts.host:opts.port (port 0: any free port) and serves on background threads.
  // Returns the bound port; throws herd::Error when the address cannot be bound.
  int start();
  int port() const { return port_; }

  // Graceful stop: refuse new requests (503) and new connections, let in-flight requests finish
  // until `deadline`, then abort the engine requests still running and wait for their
  // connections to close. Idempotent.
  void shutdown(std::chrono::milliseconds deadline);

 private:
  std::optional<HttpResponse> precheck(const HttpRequest& req);
  void route(const HttpRequest& req, HttpResponse& res);

  EngineClient& client_;
  ServerOptions opts_;
  std::string model_name_;
  RequestLog& log_;
  std::atomic<bool> draining_{false};
  std::unique_ptr<HttpContext> ctx_;
  std::unique_ptr<HttpTransport> transport_;
  std::unique_ptr<BatchService> batches_;  // --state-dir given; refers to *ctx_
  int port_ = -1;
  bool stopped_ = false;
};

// The name clients use for the model: --served-model-name, else the model directory's last
// path component (never the full path: responses must not reveal the file system).
std::string default_model_name(const std::string& model_dir);

}  // namespace herd::server
