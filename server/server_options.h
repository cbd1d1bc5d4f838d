// Settings of the serving front end (`herd serve`), independent of the engine's own options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace herd::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless the operator asks for more
  int port = 8000;                 // 0 = pick a free port (tests)
  int grpc_port = 50051;           // 0 = pick a free port; -1 = no gRPC server
  std::string api_key;             // empty = no authentication
  std::string served_model_name;   // the `model` clients name; empty = basename of model dir
  bool metrics_public = false;     // serve /metrics without the API key
  size_t max_body_bytes = 16u << 20;
  double shutdown_timeout_s = 30.0;
  // Open HTTP connections; beyond it a new connection is answered 503 + Retry-After: 1 and
  // closed (no thread is spent on it).
  int max_connections = 4096;
  int http_threads = 2;  // threads running the HTTP sockets (event loop; no thread per socket)
  int http_workers = 4;  // threads running route handlers (JSON, tokenize, submit)
  double header_timeout_s = 10.0;      // request line + headers must arrive within this (total)
  double body_timeout_s = 60.0;        // the body must arrive within this once headers are in
  double keep_alive_timeout_s = 15.0;  // an idle keep-alive connection is closed after this
  double send_timeout_s = 60.0;        // one write to a client that does not read fails after this
  double heartbeat_s = 15.0;           // idle SSE streams get a ": keep-alive" comment this often
  // /v1/files and /v1/batches (server/batch_service.h): stored under this folder; empty = off.
  std::string state_dir;
  int batch_max_in_flight = 32;  // batch requests in the engine at once (the rest wait here)
  // A batch not finished this long after its creation expires (OpenAI's completion_window is
  // "24h"; shorter values are for tests and for operators who want stale work dropped).
  int64_t batch_expiry_s = 24 * 3600;
};

}  // namespace herd::server
