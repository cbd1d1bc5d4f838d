// `herd rs` end to end through the binary on tiny models: a run killed with SIGKILL mid-job and
// rerun with the same command ends with exactly one record per prompt, the same candidates as
// an uninterrupted run; bad input lines are reported with their numbers; the KV split is
// logged; the summary is JSON on stdout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/jobs/result_journal.h"
#include "tests/api/engine_test_util.h"
#include "tests/common/run_command.h"
#include "tests/model/checkpoint_test_util.h"

extern char** environ;

namespace herd {
namespace {

using json = nlohmann::json;
constexpr int kPrompts = 24;

std::vector<json> read_records(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

size_t complete_lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !in.eof();
  return n;
}

class RsCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
    std::ofstream in(dir_ / "prompts.jsonl");
    for (int i = 0; i < kPrompts; ++i)
      in << json{{"id", std::string("p").append(std::to_string(i))},
                 {"messages",
                  json::array(
                      {{{"role", "user"},
                        {"content", std::string("question number ").append(std::to_string(i))}}})}}
                .dump()
         << "\n";
  }
  std::vector<std::string> argv(const std::string& out) const {
    return {HERD_BINARY,
            "rs",
            "--policy",
            testing::tiny_model_dir(),
            "--reward",
            testing::tiny_model_dir("tiny-rm"),
            "--prompts",
            dir_ / "prompts.jsonl",
            "--output",
            dir_ / out,
            "--samples",
            "4",
            "--max-tokens",
            "24",
            "--seed",
            "3",
            "--threads",
            "1",
            "--kv-cache-gb",
            "0.01",
            "--prompts-in-flight",
            "2",
            "--max-num-batched-tokens",
            "64"};
  }
  static std::string shell(const std::vector<std::string>& a) {
    std::string s;
    for (const auto& x : a) s += "'" + x + "' ";
    return s;
  }
  testing::ScratchDir dir_;
};

TEST_F(RsCommand, KillNineThenRerunGivesExactlyOneRecordPerPrompt) {
  // The reference: one uninterrupted run.
  int status = 0;
  const std::string summary =
      testing::run_command(shell(argv("clean.jsonl")) + "2>/dev/null", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << summary;
  const auto clean = read_records(dir_ / "clean.jsonl");
  ASSERT_EQ(clean.size(), size_t(kPrompts));
  EXPECT_EQ(json::parse(summary)["written"], kPrompts);

  // The same command, killed with SIGKILL once a few records are out.
  const std::vector<std::string> a = argv("out.jsonl");
  std::vector<char*> cargv;
  for (const auto& s : a) cargv.push_back(const_cast<char*>(s.c_str()));
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, HERD_BINARY, &fa, nullptr, cargv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  bool exited = false;
  for (int i = 0; i < 6000 && complete_lines(dir_ / "out.jsonl") < 3; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(exited) << "the job ended before it could be killed";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  const size_t before = complete_lines(dir_ / "out.jsonl");
  ASSERT_LT(before, size_t(kPrompts)) << "killed too late to test a resume";

  const std::string rerun = testing::run_command(shell(a) + "2>/dev/null", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << rerun;
  const json rs = json::parse(rerun);
  EXPECT_EQ(rs["resumed"].get<size_t>(), before);
  EXPECT_EQ(rs["written"].get<size_t>(), kPrompts - before);

  const auto recs = read_records(dir_ / "out.jsonl");
  ASSERT_EQ(recs.size(), size_t(kPrompts));
  std::map<std::string, json> want;
  for (const json& r : clean) want[ResultJournal::key_of(r["id"])] = r;
  std::map<std::string, int> seen;
  for (const json& r : recs) {
    const std::string id = ResultJournal::key_of(r["id"]);
    ++seen[id];
    ASSERT_TRUE(want.count(id)) << id;
    ASSERT_EQ(r["candidates"].size(), 4u);
    for (size_t i = 0; i < 4; ++i)
      EXPECT_EQ(r["candidates"][i]["text"], want[id]["candidates"][i]["text"]) << id << " " << i;
  }
  EXPECT_EQ(seen.size(), size_t(kPrompts));
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
}

TEST_F(RsCommand, BadLinesAreReportedWithLineNumbersAndTheSplitIsLogged) {
  std::ofstream(dir_ / "prompts.jsonl") << "{\"id\": 1, \"prompt\": \"hi\"}\n{oops\n{\"id\": 2}\n";
  int status = 0;
  const std::string out =
      testing::run_command(shell(argv("out.jsonl")) + "2>'" + (dir_ / "err.txt") + "'", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  std::ifstream err(dir_ / "err.txt");
  const std::string log((std::istreambuf_iterator<char>(err)), {});
  EXPECT_NE(log.find("prompts.jsonl:2: skipped"), std::string::npos) << log;
  EXPECT_NE(log.find("prompts.jsonl:3: skipped"), std::string::npos) << log;
  EXPECT_NE(log.find("KV budget split"), std::string::npos) << log;
  const json s = json::parse(out);
  EXPECT_EQ(s["written"], 1);
  EXPECT_EQ(s["bad_lines"].size(), 2u);
  EXPECT_EQ(read_records(dir_ / "out.jsonl").size(), 1u);
}

TEST_F(RsCommand, BadFlagsExit2) {
  int status = 0;
  testing::run_command(std::string(HERD_BINARY) + " rs --policy x 2>/dev/null", &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  testing::run_command(shell(argv("o.jsonl")) + "--samples 0 2>/dev/null", &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

}  // namespace
}  // namespace herd
