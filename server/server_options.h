// Settings of the serving front end (`herd serve`), independent of the engine's own options.
#pragma once

#include <cstddef>
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
  int max_connections = 4096;  // worker threads for HTTP connections (one per open socket)
  double heartbeat_s = 15.0;   // idle SSE streams get a ": keep-alive" comment this often
};

}  // namespace herd::server
