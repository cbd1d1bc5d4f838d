// Streams under stress: client disconnects, graceful shutdown (drain and deadline), and many
// concurrent SSE connections.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/server/server_fixture.h"

namespace herd::testing {
namespace {

using namespace std::chrono_literals;

// Polls `pred` until it holds or 20 s pass (no timing assertion: only a hang guard).
template <class F>
bool eventually(F pred) {
  auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

json stream_chat() {
  return {{"stream", true}, {"messages", json::array({{{"role", "user"}, {"content", "go"}}})}};
}

TEST_F(ServerTest, ClientDisconnectMidStreamAbortsTheRequest) {
  FakeEngineOptions eo;
  eo.token_delay = 1ms;
  eo.reply = [](const Request&, int) { return std::string(100000, 'z'); };
  start({}, eo);
  auto c = http();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = stream_chat().dump();
  req.set_header("Content-Type", "application/json");
  size_t received = 0;
  req.content_receiver = [&](const char*, size_t n, uint64_t, uint64_t) {
    received += n;
    return received < 2000;  // hang up after a few chunks
  };
  c.send(req);
  EXPECT_GE(received, 2000u);
  ASSERT_TRUE(eventually([&] { return engine_->aborted().size() == 1; }));
  EXPECT_EQ(*engine_->aborted().begin(), engine_->received().at(0).id);
  EXPECT_TRUE(eventually([&] { return engine_->live() == 0 && client_->live() == 0; }));
}

// A shutdown() right after start() (no request ever made) must return instead of hanging.
TEST_F(ServerTest, ShutdownRightAfterStartReturns) {
  for (int i = 0; i < 20; ++i) {
    start();
    server_->shutdown(std::chrono::milliseconds(100));
    server_.reset();
  }
}

TEST_F(ServerTest, GracefulShutdownLetsInFlightStreamsFinish) {
  FakeEngineOptions eo;
  eo.token_delay = 2ms;
  eo.reply = [](const Request&, int) { return std::string(200, 'q'); };
  start({}, eo);
  std::string body;
  int status = 0;
  std::thread t([&] {
    auto res = post("/v1/chat/completions", stream_chat());
    if (res) {
      status = res->status;
      body = res->body;
    }
  });
  ASSERT_TRUE(eventually([&] { return engine_->live() == 1; }));
  server_->shutdown(30s);
  t.join();
  EXPECT_EQ(status, 200);
  auto events = sse_payloads(body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(engine_->aborted().empty());
  // No longer accepting.
  auto c = http();
  c.set_connection_timeout(1, 0);
  EXPECT_FALSE(c.Get("/health"));
}

TEST_F(ServerTest, ShutdownDeadlineAbortsWhatIsLeft) {
  FakeEngineOptions eo;
  eo.token_delay = 1ms;
  eo.reply = [](const Request&, int) { return std::string(1000000, 'q'); };
  start({}, eo);
  std::string stream_body, plain_body;
  int plain_status = 0;
  std::thread s([&] {
    auto res = post("/v1/chat/completions", stream_chat());
    if (res) stream_body = res->body;
  });
  std::thread p([&] {
    auto res = post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 4000}});
    if (res) {
      plain_status = res->status;
      plain_body = res->body;
    }
  });
  ASSERT_TRUE(eventually([&] { return engine_->live() == 2; }));
  server_->shutdown(100ms);
  s.join();
  p.join();
  EXPECT_EQ(engine_->aborted().size(), 2u);
  auto events = sse_payloads(stream_body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.back(), "[DONE]");
  // OpenAI has no "abort" finish_reason: the cut stream ends with an error event, and the cut
  // non-streaming request answers an error (503) instead of truncated text presented as success.
  EXPECT_EQ(stream_body.find("\"abort\""), std::string::npos) << stream_body;
  auto cut = json::parse(events[events.size() - 2]);
  ASSERT_TRUE(cut.contains("error")) << cut;
  EXPECT_EQ(cut["error"]["code"], "request_aborted");
  // A non-streaming reply cut by the deadline is an error, not truncated text sent as a 200.
  EXPECT_EQ(plain_status, 503) << plain_body;
  ASSERT_FALSE(plain_body.empty());
  json err = json::parse(plain_body);
  ASSERT_TRUE(err.contains("error")) << plain_body;
  EXPECT_EQ(err["error"]["type"], "server_error");
  EXPECT_NE(err["error"]["message"].get<std::string>().find("shut down"), std::string::npos);
  EXPECT_FALSE(err.contains("choices"));
}

TEST_F(ServerTest, ManyConcurrentStreams) {
  // Far more streams than server threads: every stream must be open at once before the engine
  // produces a single token.
  constexpr int kStreams = 300;
  start();
  engine_->set_paused(true);
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&] {
      auto res = post("/v1/chat/completions", stream_chat());
      if (res && res->status == 200 && res->body.size() > 6 &&
          res->body.compare(res->body.size() - 14, 14, "data: [DONE]\n\n") == 0)
        ++ok;
    });
  }
  bool all_open = eventually([&] { return engine_->live() == kStreams; });
  engine_->set_paused(false);
  for (auto& t : clients) t.join();
  EXPECT_TRUE(all_open) << "only " << engine_->live() << " streams were open at once";
  EXPECT_EQ(ok.load(), kStreams);
}

TEST_F(ServerTest, DrainingServerAnswers503OnOpenConnections) {
  start();
  // A keep-alive connection opened before the drain.
  httplib::Client c("127.0.0.1", port_);
  c.set_keep_alive(true);
  ASSERT_EQ(c.Get("/health")->status, 200);
  std::thread t([&] { server_->shutdown(5s); });
  ASSERT_TRUE(eventually([&] {
    auto r = c.Get("/health");
    return !r || r->status == 503;
  }));
  t.join();
}

}  // namespace
}  // namespace herd::testing
