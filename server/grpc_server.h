// GrpcServer: herd.v1.Herd (proto/herd/v1/herd.proto) over the same EngineClient as HTTP, plus
// grpc.health.v1 and server reflection. Built only when gRPC is available (HERD_HAVE_GRPC).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "server/engine_client.h"
#include "server/server_options.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace herd::server {

class GrpcServer {
 public:
  GrpcServer(EngineClient& client, const ServerOptions& opts, std::string model_name);
  ~GrpcServer();

  // Listens on opts.host:opts.grpc_port (0: any free port); returns the bound port. Throws
  // herd::Error when the port cannot be bound.
  int start();
  // Stops accepting calls; in-flight calls may finish until the deadline, after which gRPC
  // cancels them (their handlers abort the engine requests). Idempotent.
  void shutdown(std::chrono::milliseconds deadline);

 private:
  EngineClient& client_;
  ServerOptions opts_;
  std::string model_name_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace herd::server
