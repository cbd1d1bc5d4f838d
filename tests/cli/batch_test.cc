// `herd batch` end to end on the tiny model: OpenAI batch output lines for both endpoints, the
// route's own errors per line, bad lines reported with their line numbers, duplicate custom_ids
// rejected before anything runs, and kill -9 mid-run + rerun giving exactly one line per
// custom_id.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/api/engine_test_util.h"
#include "tests/common/run_command.h"
#include "tests/model/checkpoint_test_util.h"

extern char** environ;

namespace herd {
namespace {

using nlohmann::json;

std::vector<json> read_lines(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

json request_line(const std::string& id, const std::string& url, json body) {
  return {{"custom_id", id}, {"method", "POST"}, {"url", url}, {"body", std::move(body)}};
}

class Batch : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
  }
  std::string file(const std::string& name) const {
    return std::string(dir_.path()).append("/").append(name);
  }
  void write_input(const std::vector<std::string>& lines) {
    std::ofstream out(file("in.jsonl"));
    for (const auto& l : lines) out << l << "\n";
  }
  std::vector<std::string> args(bool errors_file) const {
    std::vector<std::string> a{HERD_BINARY,     "batch",
                               "--model",       testing::tiny_model_dir(),
                               "--threads",     "2",
                               "--kv-cache-gb", "0.05",
                               "--input",       file("in.jsonl"),
                               "--output",      file("out.jsonl")};
    if (errors_file) {
      a.push_back("--errors");
      a.push_back(file("err.jsonl"));
    }
    return a;
  }
  std::string command(bool errors_file) const {
    std::string cmd;
    for (const auto& a : args(errors_file)) cmd.append("'").append(a).append("' ");
    return cmd;
  }
  testing::ScratchDir dir_;
};

TEST_F(Batch, AnswersBothEndpointsInOpenAIBatchFormat) {
  write_input({
      request_line("chat-1", "/v1/chat/completions",
                   {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                    {"max_tokens", 4},
                    {"temperature", 0}})
          .dump(),
      request_line("text-1", "/v1/completions", {{"prompt", "hello"}, {"max_tokens", 3}}).dump(),
  });
  int status = 0;
  const std::string summary = testing::run_command(command(true) + " 2>/dev/null", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << summary;
  auto lines = read_lines(file("out.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  // The members come in OpenAI's order, as written (json sorts keys; ordered_json keeps them).
  {
    std::ifstream in(file("out.jsonl"));
    for (std::string raw; std::getline(in, raw);) {
      const auto l = nlohmann::ordered_json::parse(raw);
      std::vector<std::string> keys, response_keys;
      for (const auto& [k, v] : l.items()) keys.push_back(k);
      for (const auto& [k, v] : l["response"].items()) response_keys.push_back(k);
      EXPECT_EQ(keys, (std::vector<std::string>{"id", "custom_id", "response", "error"})) << raw;
      EXPECT_EQ(response_keys, (std::vector<std::string>{"status_code", "request_id", "body"}));
      EXPECT_EQ(l["response"]["body"].begin().key(), "id") << raw;  // the completion's own order
    }
  }
  std::map<std::string, json> by_id;
  for (const auto& l : lines) by_id[l["custom_id"].get<std::string>()] = l;
  const json& chat = by_id.at("chat-1");
  EXPECT_EQ(chat["id"].get<std::string>().rfind("batch_req_", 0), 0u);
  EXPECT_TRUE(chat["error"].is_null());
  EXPECT_EQ(chat["response"]["status_code"], 200);
  EXPECT_EQ(chat["response"]["body"]["object"], "chat.completion");
  EXPECT_EQ(chat["response"]["request_id"], chat["response"]["body"]["id"]);
  EXPECT_EQ(chat["response"]["body"]["usage"]["completion_tokens"], 4);
  const json& text = by_id.at("text-1");
  EXPECT_EQ(text["response"]["body"]["object"], "text_completion");
  EXPECT_EQ(text["response"]["body"]["usage"]["completion_tokens"], 3);
  EXPECT_EQ(count_lines(file("err.jsonl")), 0u);
  const json s = json::parse(summary);
  EXPECT_EQ(s["done"], 2);
  EXPECT_EQ(s["total"], 2);
  EXPECT_EQ(s["output_tokens"], 7);
}

// The README's example input, as written.
TEST_F(Batch, ReadmeExampleInputRuns) {
  std::string cmd = std::string(HERD_BINARY)
                        .append(" batch --model ")
                        .append(testing::tiny_model_dir())
                        .append(" --served-model-name tiny --threads 2 --kv-cache-gb 0.05 --input ")
                        .append(HERD_SOURCE_DIR)
                        .append("/docs/examples/batch_requests.jsonl --output ")
                        .append(file("out.jsonl"))
                        .append(" 2>/dev/null");
  int status = 0;
  const std::string summary = testing::run_command(cmd, &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << summary;
  std::map<std::string, json> by_id;
  for (const auto& l : read_lines(file("out.jsonl"))) by_id[l["custom_id"].get<std::string>()] = l;
  ASSERT_EQ(by_id.size(), 3u);
  for (const auto& [id, l] : by_id) EXPECT_EQ(l["response"]["status_code"], 200) << l.dump();
  EXPECT_EQ(by_id["text-1"]["response"]["body"]["choices"].size(), 2u);
  EXPECT_EQ(by_id["chat-1"]["response"]["body"]["model"], "tiny");
}

TEST_F(Batch, ErrorsGoToTheErrorFileAndBadLinesAreReportedWithTheirNumbers) {
  write_input({
      request_line("ok", "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}).dump(),
      "this is not json",
      request_line("bad-field", "/v1/completions", {{"prompt", "x"}, {"temperature", "hot"}})
          .dump(),
      json{{"custom_id", "bad-method"}, {"method", "GET"}, {"url", "/v1/completions"}, {"body", {}}}
          .dump(),
      request_line("bad-url", "/v1/embeddings", {{"input", "x"}}).dump(),
      request_line("streamed", "/v1/completions", {{"prompt", "x"}, {"stream", true}}).dump(),
  });
  int status = 0;
  const std::string summary = testing::run_command(command(true) + " 2>&1 >/dev/null", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << summary;
  EXPECT_NE(summary.find("in.jsonl:2: skipped (invalid_json)"), std::string::npos) << summary;
  ASSERT_EQ(count_lines(file("out.jsonl")), 1u);
  std::map<std::string, json> errs;
  for (const auto& l : read_lines(file("err.jsonl"))) errs[l["custom_id"].get<std::string>()] = l;
  ASSERT_EQ(errs.size(), 4u);
  // A request the route rejects: the route's own 400 body, naming the field.
  EXPECT_EQ(errs["bad-field"]["response"]["status_code"], 400);
  EXPECT_EQ(errs["bad-field"]["response"]["body"]["error"]["param"], "temperature");
  EXPECT_EQ(errs["streamed"]["response"]["body"]["error"]["param"], "stream");
  // Lines that are not requests at all: no response, an error with the line number.
  EXPECT_TRUE(errs["bad-method"]["response"].is_null());
  EXPECT_EQ(errs["bad-method"]["error"]["code"], "invalid_method");
  EXPECT_EQ(errs["bad-method"]["error"]["line"], 4);
  EXPECT_EQ(errs["bad-url"]["error"]["code"], "invalid_url");
  EXPECT_EQ(errs["bad-url"]["error"]["line"], 5);
}

TEST_F(Batch, DuplicateCustomIdsRejectTheWholeInput) {
  write_input({
      request_line("a", "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}).dump(),
      request_line("b", "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}).dump(),
      request_line("a", "/v1/completions", {{"prompt", "y"}, {"max_tokens", 2}}).dump(),
  });
  int status = 0;
  const std::string err = testing::run_command(command(false) + " 2>&1", &status);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2) << err;
  EXPECT_NE(err.find("in.jsonl:3: custom_id 'a' is also on line 1"), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(file("out.jsonl")));
}

TEST_F(Batch, KillNineThenRerunGivesExactlyOneLinePerCustomId) {
  const int total = 40;
  std::vector<std::string> lines;
  for (int i = 0; i < total; ++i)
    lines.push_back(request_line(std::string("r").append(std::to_string(i)), "/v1/completions",
                                 {{"prompt", std::string("count ").append(std::to_string(i))},
                                  {"max_tokens", 48},
                                  {"ignore_eos", true},
                                  {"temperature", 0}})
                        .dump());
  write_input(lines);
  // Two requests at a time: the run lasts long enough to be killed in the middle.
  std::vector<std::string> a = args(false);
  a.push_back("--max-in-flight");
  a.push_back("2");
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_lines(file("out.jsonl")) < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st)) << "the first run ended before it was killed";
  const size_t before = count_lines(file("out.jsonl"));
  ASSERT_GE(before, 3u);
  ASSERT_LT(before, size_t(total)) << "killed too late to test a resume";

  int status = 0;
  const std::string summary = testing::run_command(command(false) + " 2>/dev/null", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << summary;
  const json s = json::parse(summary);
  EXPECT_GE(s["resumed"].get<int>(), 3);
  EXPECT_EQ(s["done"], total);
  std::map<std::string, int> seen;
  for (const auto& l : read_lines(file("out.jsonl"))) {
    ++seen[l["custom_id"].get<std::string>()];
    EXPECT_EQ(l["response"]["status_code"], 200);
    EXPECT_EQ(l["response"]["body"]["usage"]["completion_tokens"], 48);
  }
  EXPECT_EQ(seen.size(), size_t(total));
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
}

}  // namespace
}  // namespace herd
