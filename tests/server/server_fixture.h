// A real HttpServer on a loopback port in front of a FakeEngine, plus small helpers for SSE.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/engine_client.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/request_log.h"
#include "tests/server/fake_engine.h"

namespace herd::testing {

using nlohmann::json;

class ServerTest : public ::testing::Test {
 protected:
  void start(server::ServerOptions opts = {}, FakeEngineOptions eopts = {}) {
    engine_ = std::make_unique<FakeEngine>(std::move(eopts));
    metrics_ = std::make_unique<server::Metrics>("fake-model");
    client_ = std::make_unique<server::EngineClient>(*engine_, *metrics_);
    opts.port = 0;
    opts.grpc_port = -1;
    server_ = std::make_unique<server::HttpServer>(*client_, opts, "fake-model", log_);
    port_ = server_->start();
  }
  void TearDown() override {
    if (server_) server_->shutdown(std::chrono::milliseconds(2000));
    server_.reset();
    if (engine_) engine_->shutdown();
  }

  httplib::Client http() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    return c;
  }
  // POST a JSON body; returns the result (status, body).
  httplib::Result post(const std::string& path, const json& body,
                       const httplib::Headers& headers = {}) {
    auto c = http();
    return c.Post(path.c_str(), headers, body.dump(), "application/json");
  }

  server::RequestLog log_{nullptr};
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::EngineClient> client_;
  std::unique_ptr<server::HttpServer> server_;
  int port_ = -1;
};

// Splits an SSE body into its events' data payloads; fails the test on anything that is not
// exactly "data: ...\n\n".
inline std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated SSE event at " << pos;
    if (end == std::string::npos) break;
    std::string ev = body.substr(pos, end - pos);
    EXPECT_EQ(ev.rfind("data: ", 0), 0u) << "not a data event: " << ev;
    EXPECT_EQ(ev.find('\n'), std::string::npos) << "multi-line event: " << ev;
    out.push_back(ev.substr(6));
    pos = end + 2;
  }
  return out;
}

}  // namespace herd::testing
