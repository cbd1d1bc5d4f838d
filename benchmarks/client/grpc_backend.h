// Streaming herd.v1.Herd/Generate (proto/herd/v1/herd.proto) over one shared channel (gRPC
// channels multiplex concurrent calls). Same request shape as the HTTP backend: ignore_eos,
// max_tokens = output_len, temperature 0; token counts from the final response's usage. A
// response counts as a content chunk when it carries tokens or text. Built only with gRPC.
#pragma once

#include <memory>
#include <string>

#include "benchmarks/client/backend.h"

namespace herd::bench {

class GrpcBackend : public Backend {
 public:
  // target: HOST:PORT.
  GrpcBackend(const std::string& target, std::string api_key);
  ~GrpcBackend() override;
  std::string name() const override { return "grpc-generate"; }
  std::vector<int32_t> tokenize(const std::string& text) override;
  RequestOutput send(const BenchRequest& req) override;
  // ModelInfo's model_name (used when --model is not given).
  std::string model_name();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herd::bench
