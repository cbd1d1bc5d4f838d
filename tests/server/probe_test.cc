// The bad-input probe of issue 14 (items 9, 10, 13), replayed against a sacrificial `herd serve`
// process (the real binary, a tiny model) whose address space is capped at 1 GiB: the 35 KB
// body that crashed the server (tool-call arguments nested 17,500 deep), the 10 KB and 200 KB
// bodies whose cost grew with the square of their depth (tools[].function.parameters nested
// 5,000 and 100,000 deep: 584 MiB and 1.95 GiB before), over HTTP and gRPC, and numbers out of
// range. Each must be a 400 / INVALID_ARGUMENT, and the server must still answer afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#ifdef HERD_HAVE_GRPC
#include <grpcpp/grpcpp.h>

#include "herd/v1/herd.grpc.pb.h"
#endif

namespace herd::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr rlim_t kAddressSpaceCap = rlim_t{1} << 30;  // 1 GiB
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAsan = true;
#else
constexpr bool kUnderAsan = false;
#endif
#else
constexpr bool kUnderAsan = false;
#endif

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
    char tmpl[] = "/tmp/herd-probe-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string make = std::string(HERD_BINARY) + " make-model --shape tiny --output " +
                             dir_ + "/m >" + dir_ + "/make.log 2>&1";
    ASSERT_EQ(std::system(make.c_str()), 0) << make;
    start_server();
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void start_server() {
    const std::string log = dir_ + "/serve.log";
    const std::string model = dir_ + "/m";
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      // The sacrificial child: capped address space, few malloc arenas (each reserves 64 MiB
      // of address space), a small KV cache.
      // Under AddressSanitizer the binary reserves terabytes of shadow address space at start,
      // so no address-space cap can apply; there the test checks the answers and survival only
      // (the Release build of the same test keeps the cap).
      if (!kUnderAsan) {
        rlimit lim{kAddressSpaceCap, kAddressSpaceCap};
        setrlimit(RLIMIT_AS, &lim);
      }
      setenv("MALLOC_ARENA_MAX", "2", 1);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execl(HERD_BINARY, HERD_BINARY, "serve", "--model", model.c_str(), "--port", "0",
            "--grpc-port", "0", "--kv-cache-gb", "0.02", "--threads", "1",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 600 && http_port_ < 0; ++i) {
      std::this_thread::sleep_for(50ms);
      ASSERT_TRUE(alive()) << "herd serve exited: " << read(log);
      const std::string text = read(log);
      if (int p = port_after(text, "grpc listening on "); p > 0) grpc_port_ = p;
      if (int p = port_after(text, "listening on http://"); p > 0) http_port_ = p;
    }
    ASSERT_GT(http_port_, 0) << read(log);
  }

  // The port of the first "<prefix>HOST:PORT" in the server's log, or -1. (No std::regex:
  // GCC 12's <regex> trips -Wmaybe-uninitialized in the ASan build.)
  static int port_after(const std::string& text, const std::string& prefix) {
    size_t at = text.find(prefix);
    if (at == std::string::npos) return -1;
    size_t colon = text.find(':', at + prefix.size());
    if (colon == std::string::npos) return -1;
    int port = 0;
    size_t i = colon + 1;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i)
      port = port * 10 + (text[i] - '0');
    return i > colon + 1 && i < text.size() ? port : -1;
  }

  static std::string read(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  bool alive() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

  httplib::Result post(const std::string& path, const std::string& body) {
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(60, 0);
    return c.Post(path.c_str(), body, "application/json");
  }
  // 400 naming `param`, and the server still up and answering.
  void expect_400(const std::string& path, const std::string& body, const std::string& param) {
    auto res = post(path, body);
    ASSERT_TRUE(res) << path << ": no answer (" << body.size()
                     << " byte body); server alive: " << alive();
    EXPECT_EQ(res->status, 400) << res->body;
    EXPECT_EQ(json::parse(res->body)["error"]["param"], param) << res->body;
    expect_healthy();
  }
  void expect_healthy() {
    ASSERT_TRUE(alive()) << read(dir_ + "/serve.log");
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(10, 0);
    auto h = c.Get("/health");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
  }

  std::string dir_;
  pid_t pid_ = -1;
  int http_port_ = -1, grpc_port_ = -1;
};

// A past tool call whose arguments nest '[' `depth` deep (the probe's crash body).
std::string deep_arguments_body(size_t depth) {
  json body = {{"max_tokens", 2},
               {"messages",
                {{{"role", "user"}, {"content", "hi"}},
                 {{"role", "assistant"},
                  {"content", nullptr},
                  {"tool_calls",
                   {{{"id", "c1"},
                     {"type", "function"},
                     {"function", {{"name", "f"}, {"arguments", nested(depth)}}}}}}},
                 {{"role", "user"}, {"content", "again"}}}}};
  return body.dump();
}

// tools[0].function.parameters nested `depth` deep (the probe's quadratic bodies).
std::string deep_tools_body(size_t depth) {
  return R"({"max_tokens": 2, "messages": [{"role": "user", "content": "hi"}], "tools": )"
         R"([{"type": "function", "function": {"name": "f", "parameters": )" +
         nested(depth) + "}}]}";
}

TEST_F(ProbeTest, HttpCrashAndBlowUpBodiesAre400AndTheServerSurvives) {
  const std::string crash = deep_arguments_body(17500);
  EXPECT_GE(crash.size(), 35000u);
  expect_400("/v1/chat/completions", crash, "messages[1].tool_calls[0].function.arguments");
  expect_400("/tokenize", crash, "messages[1].tool_calls[0].function.arguments");
  for (size_t depth : {5000, 100000}) {  // 10 KB and 200 KB
    const std::string body = deep_tools_body(depth);
    expect_400("/v1/chat/completions", body, "tools[0].function.parameters");
    expect_400("/tokenize", body, "tools[0].function.parameters");
  }
  expect_400("/v1/completions", nested(100000), "[0][0][0][0]");
  expect_400("/v1/chat/completions",
             R"({"messages": [{"role": "user", "content": "hi"}], "temperature": 1e309})",
             "temperature");
  expect_400("/v1/completions", R"({"prompt": "hi", "unknown_field": 1e400})", "unknown_field");
  // And it still serves real requests.
  auto ok = post("/v1/chat/completions",
                 R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

#ifdef HERD_HAVE_GRPC
TEST_F(ProbeTest, GrpcCrashAndBlowUpRequestsAreInvalidArgumentAndTheServerSurvives) {
  ASSERT_GT(grpc_port_, 0);
  auto stub = ::herd::v1::Herd::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(grpc_port_), grpc::InsecureChannelCredentials()));
  auto chat = [&](const ::herd::v1::ChatRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    auto reader = stub->Chat(&ctx, req);
    ::herd::v1::GenerateResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  };
  ::herd::v1::ChatRequest base;
  auto* u = base.add_messages();
  u->set_role("user");
  u->set_content("hi");
  base.mutable_params()->set_max_tokens(2);

  ::herd::v1::ChatRequest crash = base;
  auto* a = crash.add_messages();
  a->set_role("assistant");
  auto* tc = a->add_tool_calls();
  tc->set_name("f");
  tc->set_arguments(nested(17500));
  auto* again = crash.add_messages();
  again->set_role("user");
  again->set_content("again");
  auto s = chat(crash);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("messages[1].tool_calls[0].function.arguments"),
            std::string::npos)
      << s.error_message();
  expect_healthy();

  for (size_t depth : {5000, 100000}) {
    ::herd::v1::ChatRequest tools = base;
    tools.set_tools_json(R"([{"type": "function", "function": {"name": "f", "parameters": )" +
                         nested(depth) + "}}]");
    s = chat(tools);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_EQ(s.error_message().rfind("tools_json: ", 0), 0u) << s.error_message();
    expect_healthy();
  }
  EXPECT_TRUE(chat(base).ok());
}
#endif

}  // namespace
}  // namespace herd::testing
