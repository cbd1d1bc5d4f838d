#include "benchmarks/client/http_backend.h"

#include <httplib.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "benchmarks/client/completion_stream.h"
#include "engine/common/error.h"

namespace herd::bench {

using nlohmann::json;

HttpTarget parse_base_url(const std::string& url) {
  HttpTarget t;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    t.scheme = "http";
    t.port = 80;
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    t.scheme = "https";
    t.port = 443;
    rest = url.substr(8);
  } else {
    throw InvalidArgument("base-url",
                          "--base-url must look like http://HOST:PORT, got '" + url + "'");
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    t.path_prefix = rest.substr(slash);
    rest.resize(slash);
    while (!t.path_prefix.empty() && t.path_prefix.back() == '/') t.path_prefix.pop_back();
  }
  std::string port;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:PORT
    auto close = rest.find(']');
    if (close == std::string::npos)
      throw InvalidArgument("base-url", "unclosed '[' in --base-url '" + url + "'");
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':')
        throw InvalidArgument("base-url", "bad host in --base-url '" + url + "'");
      port = rest.substr(close + 2);
      has_port = true;
    }
    rest = rest.substr(1, close - 1);
  } else if (auto colon = rest.find(':'); colon != std::string::npos) {
    port = rest.substr(colon + 1);
    has_port = true;
    rest.resize(colon);
  }
  if (has_port) {
    int p = -1;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535)
      throw InvalidArgument("base-url", "bad port in --base-url '" + url + "'");
    t.port = p;
  }
  if (rest.empty()) throw InvalidArgument("base-url", "no host in --base-url '" + url + "'");
  t.host = rest;
  return t;
}

HttpBackend::HttpBackend(const std::string& base_url, std::string model, std::string api_key)
    : target_(parse_base_url(base_url)), model_(std::move(model)), api_key_(std::move(api_key)) {}

namespace {

// httplib picks plain or TLS from the scheme; IPv6 hosts need their brackets back.
httplib::Client make_client(const HttpTarget& t) {
  const std::string host = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
  return httplib::Client(t.scheme + "://" + host + ":" + std::to_string(t.port));
}

httplib::Headers auth_headers(const std::string& key) {
  httplib::Headers h;
  if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
  return h;
}

}  // namespace

std::vector<int32_t> HttpBackend::tokenize(const std::string& text) {
  httplib::Client cli = make_client(target_);
  cli.set_connection_timeout(10, 0);
  cli.set_read_timeout(60, 0);
  json body = {{"model", model_}, {"prompt", text}, {"add_special_tokens", false}};
  auto res = cli.Post((target_.path_prefix + "/tokenize").c_str(), auth_headers(api_key_),
                      body.dump(), "application/json");
  if (!res)
    throw Error("POST /tokenize to " + target_.host + ":" + std::to_string(target_.port) +
                " failed: " + httplib::to_string(res.error()));
  if (res->status != 200)
    throw Error("POST /tokenize answered " + std::to_string(res->status) + ": " + res->body);
  json j = json::parse(res->body, nullptr, false);
  if (j.is_discarded() || !j.contains("tokens") || !j["tokens"].is_array())
    throw Error("POST /tokenize answered without a 'tokens' list: " + res->body.substr(0, 200));
  return j["tokens"].get<std::vector<int32_t>>();
}

RequestOutput HttpBackend::send(const BenchRequest& req) {
  json body = {{"model", model_},    {"max_tokens", req.output_len},
               {"ignore_eos", true}, {"temperature", 0.0},
               {"stream", true},     {"stream_options", {{"include_usage", true}}}};
  if (!req.ids.empty())
    body["prompt"] = req.ids;
  else
    body["prompt"] = req.text;

  httplib::Request r;
  r.method = "POST";
  r.path = target_.path_prefix + "/v1/completions";
  r.headers = auth_headers(api_key_);
  r.set_header("Content-Type", "application/json");
  r.body = body.dump();

  int status = 0;
  std::string error_body;
  const double start = now_s();
  StreamRecorder rec(start);
  CompletionStreamReader reader(rec);
  r.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  r.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    const double t = now_s();
    if (status == 200)
      reader.feed(std::string_view(data, n), t);
    else
      error_body.append(data, n);
    return true;
  };
  httplib::Client cli = make_client(target_);
  cli.set_connection_timeout(30, 0);
  cli.set_read_timeout(3600, 0);  // a long prefill under load is not a failure
  cli.set_tcp_nodelay(true);
  auto res = cli.send(r);
  const double end = now_s();
  if (!res)
    rec.on_error("HTTP request failed: " + httplib::to_string(res.error()));
  else if (status != 200)
    rec.on_error("HTTP " + std::to_string(status) + ": " + error_body.substr(0, 500));
  else if (!reader.done())
    rec.on_error("the stream ended before data: [DONE]");
  return rec.finish(end);
}

}  // namespace herd::bench
