// Streaming POST /v1/completions against an OpenAI-compatible server (herd serve, or vLLM):
// stream: true with stream_options.include_usage (token counts from the server),
// ignore_eos: true and max_tokens = output_len so every reply has exactly that many tokens,
// temperature 0. Each request opens its own connection, as vLLM's client does.
#pragma once

#include <string>

#include "benchmarks/client/backend.h"

namespace herd::bench {

struct HttpTarget {
  std::string scheme;  // http or https
  std::string host;
  int port = 80;
  std::string path_prefix;  // "" or e.g. "/proxy" (no trailing slash)
};
// "http[s]://HOST[:PORT][/PREFIX]" (HOST may be [IPv6]); throws
// herd::InvalidArgument("base-url", ...) otherwise.
HttpTarget parse_base_url(const std::string& url);

class HttpBackend : public Backend {
 public:
  HttpBackend(const std::string& base_url, std::string model, std::string api_key);
  std::string name() const override { return "openai-completions"; }
  std::vector<int32_t> tokenize(const std::string& text) override;
  RequestOutput send(const BenchRequest& req) override;

 private:
  HttpTarget target_;
  std::string model_;
  std::string api_key_;
};

}  // namespace herd::bench
