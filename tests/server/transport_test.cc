// The HTTP transport under hostile or unusual clients (issue 14 items 11, 12, 15, 16): chunked
// bodies over the limit, slow headers (slowloris), the connection cap, clients that go away
// while a non-streaming request runs, thousands of SSE streams on a few threads, HTTP/1.0.
// Raw sockets: these are the cases a well-behaved client library never produces.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "tests/server/server_fixture.h"

namespace herd::testing {
namespace {

using namespace std::chrono_literals;

template <class F>
bool eventually(F pred, std::chrono::seconds limit = 20s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// A blocking loopback socket whose reads and writes give up after 20 s (hang guard only).
int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until the peer closes (or an error / the 20 s guard).
std::string read_to_close(int fd) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Reads until `marker` has arrived (or the peer closes).
std::string read_until(int fd, const std::string& marker) {
  std::string out;
  char buf[8192];
  while (out.find(marker) == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// True when the server has closed (or reset) the connection: a read returns 0 or an error
// other than a timeout. Does not wait: only what has already arrived counts.
bool closed_by_peer(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

std::string json_post(const std::string& path, const std::string& body,
                      const std::string& version = "HTTP/1.1") {
  return "POST " + path + " " + version +
         "\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

size_t rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  return 0;
}

size_t thread_count() {
  size_t n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
  }
  return n;
}

// Item 11: a chunked body is bounded like a Content-Length one: 413 once the limit is crossed,
// and the rest of the body is never read into memory (the server hangs up instead).
TEST_F(ServerTest, ChunkedBodyOverLimitIs413WithoutReadingIt) {
  server::ServerOptions o;
  o.max_body_bytes = 64 * 1024;
  start(o);
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  const size_t rss0 = rss_bytes();
  ASSERT_TRUE(send_all(fd,
                       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string piece(64 * 1024, 'a');
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
  const std::string one_chunk = size + piece + "\r\n";
  // 1 MiB, then the answer: it must come without the body having ended.
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(send_all(fd, one_chunk));
  std::string head = read_until(fd, "}}");
  EXPECT_EQ(head.rfind("HTTP/1.1 413", 0), 0u) << head.substr(0, 200);
  auto body_at = head.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  json err = json::parse(head.substr(body_at + 4));
  EXPECT_EQ(err["error"]["code"], "request_too_large");
  // Keep sending (up to 256 MiB): the server hangs up long before, so the body never arrives
  // whole and the process does not grow by it.
  size_t sent = 16 * one_chunk.size();
  const size_t total = size_t{256} << 20;
  while (sent < total && send_all(fd, one_chunk)) sent += one_chunk.size();
  EXPECT_LT(sent, total) << "the server read the whole over-limit body";
  ::close(fd);
  const size_t rss1 = rss_bytes();
  EXPECT_LT(rss1, rss0 + (size_t{64} << 20)) << "RSS grew from " << rss0 << " to " << rss1;
  // The server still answers.
  auto ok = post("/v1/completions", {{"prompt", "small"}, {"max_tokens", 1}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

// Item 12: connections beyond --max-connections are answered 503 + Retry-After at once, slow
// header senders are cut by the header deadline (total, however steadily they dribble), and a
// normal request is answered afterwards.
TEST_F(ServerTest, SlowlorisIsShedAndTimedOut) {
  server::ServerOptions o;
  o.max_connections = 8;
  o.header_timeout_s = 2.0;
  start(o);
  std::vector<int> slow;
  for (int i = 0; i < o.max_connections; ++i) {
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, "GET /health HTTP/1.1\r\nHost: x\r\n"));
    slow.push_back(fd);
  }
  // Over the cap: an immediate 503 with Retry-After, not a stall.
  {
    auto c = http();
    auto res = c.Get("/health");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->get_header_value("Retry-After"), "1");
    json err = json::parse(res->body);
    EXPECT_EQ(err["error"]["type"], "server_error");
  }
  // The slow ones keep sending a header line every 100 ms; each is closed by the deadline.
  std::vector<bool> closed(slow.size(), false);
  bool all_closed = eventually([&] {
    size_t n = 0;
    for (size_t i = 0; i < slow.size(); ++i) {
      if (!closed[i]) {
        if (closed_by_peer(slow[i]) || !send_all(slow[i], "X-Slow: 1\r\n")) closed[i] = true;
      }
      n += closed[i];
    }
    if (n < slow.size()) std::this_thread::sleep_for(100ms);
    return n == slow.size();
  });
  EXPECT_TRUE(all_closed) << "slow header senders were never timed out";
  for (int fd : slow) ::close(fd);
  auto c = http();
  auto res = c.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

// Item 12: a non-streaming request whose client hangs up is aborted in the engine (its KV
// blocks freed) instead of running to max_tokens.
TEST_F(ServerTest, DisconnectedNonStreamingRequestIsAborted) {
  FakeEngineOptions eo;
  eo.token_delay = 1ms;
  eo.reply = [](const Request&, int) { return std::string(1000000, 'z'); };
  start({}, eo);
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(
      fd, json_post("/v1/completions", json{{"prompt", "x"}, {"max_tokens", 4000}}.dump())));
  ASSERT_TRUE(eventually([&] { return engine_->live() == 1; }));
  ::close(fd);
  ASSERT_TRUE(eventually([&] { return engine_->aborted().size() == 1; }));
  EXPECT_EQ(*engine_->aborted().begin(), engine_->received().at(0).id);
  EXPECT_TRUE(eventually([&] { return engine_->live() == 0 && client_->live() == 0; }));
}

// Item 12: open SSE streams cost no thread each.
TEST_F(ServerTest, ManySseStreamsOnAFewThreads) {
  constexpr int kStreams = 500;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 4 * kStreams) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 4 * kStreams);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < 3 * kStreams) GTEST_SKIP() << "needs " << 3 * kStreams << " descriptors";
  start();
  engine_->set_paused(true);
  const size_t threads_before = thread_count();
  const std::string req = json_post(
      "/v1/chat/completions",
      json{{"stream", true}, {"messages", json::array({{{"role", "user"}, {"content", "go"}}})}}
          .dump());
  std::vector<int> fds;
  for (int i = 0; i < kStreams; ++i) {
    int fd = connect_to(port_);
    ASSERT_GE(fd, 0) << i;
    ASSERT_TRUE(send_all(fd, req));
    fds.push_back(fd);
  }
  bool all_open = eventually([&] { return engine_->live() == kStreams; });
  const size_t threads_during = thread_count();
  engine_->set_paused(false);
  EXPECT_TRUE(all_open) << "only " << engine_->live() << " streams were open at once";
  // The server's threads are fixed (I/O + handler pools): none was added per stream.
  EXPECT_LE(threads_during, threads_before + 2)
      << threads_before << " threads before, " << threads_during << " with the streams open";
  int done = 0;
  for (int fd : fds) {
    std::string got = read_until(fd, "data: [DONE]\n\n");
    done += got.find("data: [DONE]\n\n") != std::string::npos &&
            got.find("Transfer-Encoding: chunked") != std::string::npos;
    ::close(fd);
  }
  EXPECT_EQ(done, kStreams);
}

// Item 15: an HTTP/1.0 client cannot read chunked encoding: its stream is sent plain and
// delimited by the close.
TEST_F(ServerTest, Http10StreamIsNotChunked) {
  start();
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(
      fd, json_post("/v1/chat/completions",
                    json{{"stream", true},
                         {"messages", json::array({{{"role", "user"}, {"content", "go"}}})}}
                        .dump(),
                    "HTTP/1.0")));
  std::string all = read_to_close(fd);
  ::close(fd);
  auto head_end = all.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << all;
  std::string head = all.substr(0, head_end);
  EXPECT_EQ(head.rfind("HTTP/1.0 200", 0), 0u) << head;
  EXPECT_EQ(head.find("chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("Connection: close"), std::string::npos) << head;
  auto events = sse_payloads(all.substr(head_end + 4));
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json c = json::parse(events[i]);
    if (c["choices"][0]["delta"].contains("content"))
      text += c["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(text, "Hello from sample 0!");
}

// Keep-alive: several requests on one connection, including after a streamed reply.
TEST_F(ServerTest, KeepAliveCarriesSeveralRequests) {
  start();
  auto c = http();
  c.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {
    auto r = c.Post("/v1/completions", json{{"prompt", "x"}, {"max_tokens", 2}}.dump(),
                    "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    auto s =
        c.Post("/v1/completions", json{{"prompt", "x"}, {"max_tokens", 2}, {"stream", true}}.dump(),
               "application/json");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->status, 200);
    EXPECT_EQ(sse_payloads(s->body).back(), "[DONE]");
  }
}

// Idle SSE streams get ": keep-alive" comments every heartbeat_s (no thread waits for them).
TEST_F(ServerTest, IdleStreamGetsHeartbeats) {
  server::ServerOptions o;
  o.heartbeat_s = 0.2;
  start(o);
  engine_->set_paused(true);
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(
      fd, json_post("/v1/chat/completions",
                    json{{"stream", true},
                         {"messages", json::array({{{"role", "user"}, {"content", "go"}}})}}
                        .dump())));
  std::string got = read_until(fd, ": keep-alive\n\n");
  EXPECT_NE(got.find(": keep-alive\n\n"), std::string::npos) << got;
  engine_->set_paused(false);
  got += read_until(fd, "data: [DONE]\n\n");
  EXPECT_NE(got.find("data: [DONE]\n\n"), std::string::npos);
  ::close(fd);
}

// An idle keep-alive connection is closed after --keep-alive-timeout; a body that stops
// arriving is cut by --body-timeout (the connection closes without a request reaching the
// engine).
TEST_F(ServerTest, IdleKeepAliveAndStalledBodyAreClosed) {
  server::ServerOptions o;
  o.keep_alive_timeout_s = 0.3;
  o.body_timeout_s = 0.3;
  start(o);
  int idle = connect_to(port_);
  ASSERT_GE(idle, 0);
  ASSERT_TRUE(send_all(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = read_until(idle, "\r\n\r\n");
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_TRUE(eventually([&] { return closed_by_peer(idle); })) << "idle keep-alive kept open";
  ::close(idle);

  int stalled = connect_to(port_);
  ASSERT_GE(stalled, 0);
  ASSERT_TRUE(send_all(stalled,
                       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\""));
  EXPECT_TRUE(eventually([&] { return closed_by_peer(stalled); })) << "stalled body kept open";
  ::close(stalled);
  EXPECT_TRUE(engine_->received().empty());
}

TEST_F(ServerTest, MalformedRequestIs400) {
  start();
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "GET /health HTTP/1.1\r\nBad Header Line\r\n\r\n"));
  std::string got = read_to_close(fd);
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
  EXPECT_NE(got.find("invalid_request_error"), std::string::npos) << got;
}

// Auth runs on the headers: a request without the key is answered 401 before its body is read.
TEST_F(ServerTest, MissingKeyIs401BeforeTheBody) {
  server::ServerOptions o;
  o.api_key = "sekret";
  start(o);
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  // Announces a body that never comes: only a check on the headers can answer.
  ASSERT_TRUE(send_all(fd,
                       "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: 100000\r\n\r\n{"));
  std::string got = read_until(fd, "}}");
  ::close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 401", 0), 0u) << got;
  EXPECT_TRUE(engine_->received().empty());
}

}  // namespace
}  // namespace herd::testing
