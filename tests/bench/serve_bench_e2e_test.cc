// `bench serve` end to end against an in-process herd server (HTTP, and gRPC when built) backed
// by the FakeEngine: every request completes, and the token counts in the results are the ones
// the engine actually consumed and produced. Nothing here asserts a duration or a rate.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "benchmarks/client/serve_bench.h"
#include "engine/common/error.h"
#include "tests/server/server_fixture.h"
#ifdef HERD_HAVE_GRPC
#include "server/grpc_server.h"
#endif

namespace herd::testing {
namespace {

using bench::ServeBenchConfig;

// The reply is exactly max_tokens long, so ignore_eos + max_tokens decide the output length as
// they do with a real model.
FakeEngineOptions exact_length_engine() {
  FakeEngineOptions o;
  o.reply = [](const Request& r, int) {
    return std::string(static_cast<size_t>(r.params.max_tokens.value_or(16)), 'x');
  };
  return o;
}

// Runs the benchmark with its table captured.
json run(const ServeBenchConfig& cfg, std::string* table = nullptr) {
  std::FILE* f = std::tmpfile();
  json j = bench::run_serve_bench(cfg, f);
  if (table) {
    std::rewind(f);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) table->append(buf, n);
  }
  std::fclose(f);
  return j;
}

void expect_all_fields(const json& j) {
  for (const char* k : {"date",
                        "backend",
                        "model_id",
                        "num_prompts",
                        "request_rate",
                        "burstiness",
                        "max_concurrency",
                        "input_len",
                        "output_len",
                        "prefix_len",
                        "dataset",
                        "seed",
                        "command_line",
                        "machine",
                        "duration",
                        "completed",
                        "failed",
                        "total_input_tokens",
                        "total_output_tokens",
                        "request_throughput",
                        "output_throughput",
                        "total_token_throughput",
                        "errors"})
    EXPECT_TRUE(j.contains(k)) << k;
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"})
    for (const char* stat : {"mean", "median", "std", "p90", "p99"}) {
      const std::string k = std::string(stat) + "_" + metric + "_ms";
      ASSERT_TRUE(j.contains(k)) << k;
      EXPECT_TRUE(j[k].is_number()) << k;
      EXPECT_GE(j[k].get<double>(), 0) << k;
    }
  ASSERT_TRUE(j["machine"].is_object());
  EXPECT_TRUE(j["machine"]["cpu_model"].is_string());
  EXPECT_GE(j["machine"]["cores"].get<int>(), 1);
}

// Token totals of the engine's requests after the first (the uncounted warm-up request).
void expect_counts_match_engine(const json& j, const FakeEngine& engine, int output_len) {
  auto received = engine.received();
  ASSERT_EQ(received.size(), j["num_prompts"].get<size_t>() + 1);
  long long prompt = 0;
  for (size_t i = 1; i < received.size(); ++i) {
    prompt += static_cast<long long>(received[i].prompt_ids.size());
    EXPECT_TRUE(received[i].params.ignore_eos);
    EXPECT_EQ(received[i].params.max_tokens, output_len);
  }
  EXPECT_EQ(j["total_input_tokens"].get<long long>(), prompt);
  EngineStats s = engine.stats();
  const long long warm_prompt = static_cast<long long>(received[0].prompt_ids.size());
  EXPECT_EQ(s.prompt_tokens, prompt + warm_prompt);
  EXPECT_EQ(s.generation_tokens, j["total_output_tokens"].get<long long>() + output_len);
  EXPECT_EQ(j["total_output_tokens"].get<long long>(),
            j["num_prompts"].get<long long>() * output_len);
}

class BenchServeHttp : public ServerTest {
 protected:
  // httplib's stop() is a no-op until the listener thread has marked itself running, so a test
  // that ends before any request reaches the server could hang in TearDown; answer one
  // request first so the listener is known to be up.
  void start(server::ServerOptions opts = {}, FakeEngineOptions eopts = {}) {
    ServerTest::start(std::move(opts), std::move(eopts));
    auto res = http().Get("/health");
    ASSERT_TRUE(res) << "the in-process server did not answer /health";
  }
  ServeBenchConfig config() {
    ServeBenchConfig c;
    c.base_url = "http://127.0.0.1:" + std::to_string(port_);
    c.model = "fake-model";
    c.num_prompts = 12;
    c.input_len = 24;
    c.output_len = 6;
    c.command_line = "test";
    return c;
  }
};

TEST_F(BenchServeHttp, RandomPromptsAllComplete) {
  start({}, exact_length_engine());
  ServeBenchConfig c = config();
  c.max_concurrency = 4;
  std::string table;
  json j = run(c, &table);
  expect_all_fields(j);
  EXPECT_EQ(j["completed"], 12);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_TRUE(j["errors"].empty());
  EXPECT_EQ(j["total_input_tokens"], 12 * 24);
  EXPECT_EQ(j["backend"], "openai-completions");
  EXPECT_EQ(j["model_id"], "fake-model");
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_EQ(j["max_concurrency"], 4);
  expect_counts_match_engine(j, *engine_, 6);
  for (const auto& r : engine_->received()) EXPECT_EQ(r.prompt_ids.size(), 24u);
  EXPECT_NE(table.find("Successful requests:                     12"), std::string::npos) << table;
  EXPECT_NE(table.find("Total generated tokens:                  72"), std::string::npos) << table;
}

TEST_F(BenchServeHttp, PoissonArrivalsWithSharedPrefix) {
  start({}, exact_length_engine());
  ServeBenchConfig c = config();
  c.num_prompts = 10;
  c.input_len = 4;
  c.prefix_len = 8;
  c.request_rate = 500;
  json j = run(c);
  EXPECT_EQ(j["completed"], 10);
  EXPECT_EQ(j["request_rate"], 500.0);
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_EQ(j["total_input_tokens"], 10 * 12);
  expect_counts_match_engine(j, *engine_, 6);
  auto received = engine_->received();
  for (const auto& r : received) {
    ASSERT_EQ(r.prompt_ids.size(), 12u);
    EXPECT_TRUE(
        std::equal(r.prompt_ids.begin(), r.prompt_ids.begin() + 8, received[0].prompt_ids.begin()));
  }
}

TEST_F(BenchServeHttp, DatasetPrompts) {
  start({}, exact_length_engine());
  const std::string path = ::testing::TempDir() + "/herd_bench_prompts.jsonl";
  std::ofstream(path) << "{\"prompt\": \"Tell me a story.\"}\n{\"prompt\": \"Hi\"}\n";
  ServeBenchConfig c = config();
  c.input_len = 0;
  c.dataset = path;
  c.num_prompts = 5;
  json j = run(c);
  std::remove(path.c_str());
  EXPECT_EQ(j["completed"], 5);
  EXPECT_EQ(j["dataset"], path);
  // Input lengths come from the server's usage (text prompts; the server adds BOS).
  expect_counts_match_engine(j, *engine_, 6);
}

TEST_F(BenchServeHttp, ApiKey) {
  server::ServerOptions o;
  o.api_key = "sesame";
  start(o, exact_length_engine());
  ServeBenchConfig c = config();
  c.num_prompts = 2;
  EXPECT_THROW(run(c), Error);  // 401 before anything is measured
  c.api_key = "sesame";
  json j = run(c);
  EXPECT_EQ(j["completed"], 2);
}

TEST_F(BenchServeHttp, BadSettingsAreInvalidArgument) {
  start({}, exact_length_engine());
  auto param_of = [](ServeBenchConfig c) -> std::string {
    try {
      run(c);
    } catch (const InvalidArgument& e) {
      return e.param();
    }
    return "";
  };
  ServeBenchConfig c = config();
  c.num_prompts = 0;
  EXPECT_EQ(param_of(c), "num-prompts");
  c = config();
  c.output_len = 0;
  EXPECT_EQ(param_of(c), "output-len");
  c = config();
  c.request_rate = 0;
  EXPECT_EQ(param_of(c), "request-rate");
  c = config();
  c.model = "";
  EXPECT_EQ(param_of(c), "model");
  c = config();
  c.grpc = "127.0.0.1:1";
  EXPECT_EQ(param_of(c), "base-url");
  c = config();
  c.input_len = 0;
  c.dataset = "prompts.jsonl";
  c.tokenizer_dir = "tok";
  EXPECT_EQ(param_of(c), "tokenizer");
  EXPECT_TRUE(engine_->received().empty());
}

// Requests the server rejects count as failed, with their errors, and are not measured: every
// other dataset prompt is longer than the context.
TEST_F(BenchServeHttp, FailedRequestsAreCounted) {
  FakeEngineOptions eo = exact_length_engine();
  eo.max_model_len = 64;
  start({}, eo);
  const std::string path = ::testing::TempDir() + "/herd_bench_long.jsonl";
  std::ofstream(path) << "{\"prompt\": \"short\"}\n{\"prompt\": \"" << std::string(100, 'y')
                      << "\"}\n";
  ServeBenchConfig c = config();
  c.input_len = 0;
  c.dataset = path;
  c.num_prompts = 6;
  json j = run(c);
  std::remove(path.c_str());
  EXPECT_EQ(j["completed"], 3);
  EXPECT_EQ(j["failed"], 3);
  ASSERT_EQ(j["errors"].size(), 3u);
  for (const auto& e : j["errors"]) EXPECT_EQ(e.get<std::string>().rfind("HTTP 400: ", 0), 0u) << e;
  EXPECT_EQ(j["total_output_tokens"], 3 * 6);
  EXPECT_EQ(j["total_input_tokens"], 3 * 6);  // BOS + "short"
}

// The CLI: flags, exit codes and the --json file (skips when the herd binary is not built).
class BenchServeCli : public BenchServeHttp {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " is not built";
  }
  static int herd(const std::string& args) {
    int rc = std::system(
        (std::string(HERD_BINARY) + " bench serve " + args + " >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }
};

TEST_F(BenchServeCli, BadFlagsExit2) {
  EXPECT_EQ(herd(""), 2);
  EXPECT_EQ(herd("--bogus 1"), 2);
  EXPECT_EQ(herd("--base-url http://127.0.0.1:1 --model m --input-len 4 --output-len 4"), 2);
  EXPECT_EQ(herd("--base-url http://127.0.0.1:1 --model m --num-prompts x --input-len 4 "
                 "--output-len 4"),
            2);
  EXPECT_EQ(herd("--base-url http://127.0.0.1:1 --model m --num-prompts 2 --input-len 4 "
                 "--output-len 4 --request-rate -3"),
            2);
  EXPECT_EQ(herd("--base-url http://127.0.0.1:1 --model m --num-prompts 2 --input-len 4 "
                 "--output-len 4 --max-concurrency 0"),
            2);
  EXPECT_EQ(herd("--base-url 127.0.0.1:1 --model m --num-prompts 2 --input-len 4 --output-len 4"),
            2);
  EXPECT_EQ(herd("--base-url http://127.0.0.1:1 --model m --num-prompts 2 --dataset x.jsonl "
                 "--input-len 4 --output-len 4"),
            2);
}

TEST_F(BenchServeCli, WritesJson) {
  start({}, exact_length_engine());
  const std::string path = ::testing::TempDir() + "/herd_bench_serve.json";
  ASSERT_EQ(herd("--base-url http://127.0.0.1:" + std::to_string(port_) +
                 " --model fake-model --num-prompts 4 --input-len 8 --output-len 3 "
                 "--request-rate 200 --seed 5 --json " +
                 path),
            0);
  std::ifstream in(path);
  json j = json::parse(in);
  std::remove(path.c_str());
  expect_all_fields(j);
  EXPECT_EQ(j["completed"], 4);
  EXPECT_EQ(j["seed"], 5);
  EXPECT_NE(j["command_line"].get<std::string>().find("--request-rate 200"), std::string::npos);
  expect_counts_match_engine(j, *engine_, 3);
}

#ifdef HERD_HAVE_GRPC
class BenchServeGrpc : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = std::make_unique<FakeEngine>(exact_length_engine());
    metrics_ = std::make_unique<server::Metrics>("fake-model");
    client_ = std::make_unique<server::EngineClient>(*engine_, *metrics_);
    server::ServerOptions o;
    o.grpc_port = 0;
    server_ = std::make_unique<server::GrpcServer>(*client_, o, "fake-model");
    port_ = server_->start();
  }
  void TearDown() override {
    server_->shutdown(std::chrono::milliseconds(2000));
    server_.reset();
    engine_->shutdown();
  }
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::EngineClient> client_;
  std::unique_ptr<server::GrpcServer> server_;
  int port_ = -1;
};

TEST_F(BenchServeGrpc, RandomPromptsAllComplete) {
  ServeBenchConfig c;
  c.grpc = "127.0.0.1:" + std::to_string(port_);
  c.num_prompts = 10;
  c.input_len = 20;
  c.output_len = 5;
  c.max_concurrency = 3;
  c.request_rate = 1000;
  std::string table;
  json j = run(c, &table);
  expect_all_fields(j);
  EXPECT_EQ(j["backend"], "grpc-generate");
  EXPECT_EQ(j["model_id"], "fake-model");  // from ModelInfo
  EXPECT_EQ(j["completed"], 10);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["total_input_tokens"], 10 * 20);
  expect_counts_match_engine(j, *engine_, 5);
  EXPECT_NE(table.find("Successful requests:                     10"), std::string::npos) << table;
}

TEST_F(BenchServeGrpc, DatasetPrompts) {
  const std::string path = ::testing::TempDir() + "/herd_bench_grpc_prompts.jsonl";
  std::ofstream(path) << "{\"prompt\": \"one two three\"}\n";
  ServeBenchConfig c;
  c.grpc = "127.0.0.1:" + std::to_string(port_);
  c.dataset = path;
  c.num_prompts = 3;
  c.output_len = 4;
  json j = run(c);
  std::remove(path.c_str());
  EXPECT_EQ(j["completed"], 3);
  expect_counts_match_engine(j, *engine_, 4);
}
#endif  // HERD_HAVE_GRPC

}  // namespace
}  // namespace herd::testing
