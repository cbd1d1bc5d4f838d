// `herd --help`, `herd help [<command>]` and `herd <command> --help` (issue 14 item 19): usage on
// stdout, exit 0, for every registered command — the list is read from `herd --help` itself,
// so a new command is covered without editing this file.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/api/engine_test_util.h"

namespace herd {
namespace {

struct Result {
  int exit_code = -1;
  std::string out;
};

// Runs `args` through /bin/sh with stdin from /dev/null; `stream` picks what is captured.
Result run(const std::string& args, bool capture_stderr = false) {
  const std::string cmd = std::string(HERD_BINARY) + " " + args + " </dev/null" +
                          (capture_stderr ? " 2>&1 >/dev/null" : " 2>/dev/null");
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  Result r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p.get())) > 0;) r.out.append(buf, n);
  const int status = pclose(p.release());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Command names listed under "commands:" in `herd --help` ("bench offline" included).
std::vector<std::string> listed_commands() {
  std::vector<std::string> names;
  std::istringstream in(run("--help").out);
  std::string line;
  bool in_list = false;
  while (std::getline(in, line)) {
    if (line == "commands:") {
      in_list = true;
      continue;
    }
    if (!in_list || line.rfind("  ", 0) != 0) continue;
    // "  name[ kind]   usage": the name is at most two words before a run of spaces.
    const std::string rest = line.substr(2);
    const size_t gap = rest.find("  ");
    names.push_back(rest.substr(0, gap));
  }
  return names;
}

class CliHelp : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
  }
};

TEST_F(CliHelp, TopLevelHelpListsEveryCommandAndExitsZero) {
  for (const char* form : {"--help", "-h", "help"}) {
    const Result r = run(form);
    EXPECT_EQ(r.exit_code, 0) << form;
    EXPECT_NE(r.out.find("usage: herd <command>"), std::string::npos) << form << ": " << r.out;
    for (const char* name : {"generate", "chat", "tokenize", "make-model", "check-model",
                             "convert-llama2c", "bench", "bench offline"})
      EXPECT_NE(r.out.find("  " + std::string(name) + " "), std::string::npos) << form << name;
  }
  // No arguments at all is still a usage error.
  EXPECT_EQ(run("").exit_code, 2);
}

TEST_F(CliHelp, EveryCommandPrintsItsOwnUsageAndExitsZero) {
  const auto names = listed_commands();
  ASSERT_GE(names.size(), 8u);
  for (const std::string& name : names) {
    for (const std::string& form : {name + " --help", name + " -h", "help " + name}) {
      const Result r = run(form);
      EXPECT_EQ(r.exit_code, 0) << "herd " << form;
      EXPECT_EQ(r.out.rfind("usage: herd " + name + " ", 0), 0u)
          << "herd " << form << ": " << r.out;
      const Result err = run(form, /*capture_stderr=*/true);
      EXPECT_EQ(err.out, "") << "herd " << form << " wrote to stderr";
    }
  }
}

TEST_F(CliHelp, HelpAfterOtherFlagsStillAnswersUsage) {
  // Found by the command's flag parser, before anything runs (no model is loaded).
  Result r = run("generate --model /nonexistent --max-tokens 3 --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("usage: herd generate ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("--prefix-cache-salt"), std::string::npos) << r.out;  // engine flags
  r = run("bench offline --workload rs --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("usage: herd bench offline ", 0), 0u) << r.out;
  r = run("bench --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("subcommands"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  offline "), std::string::npos) << r.out;
}

TEST_F(CliHelp, HelpAsAFlagValueIsAValue) {
  // `--prompt --help` is a prompt: the command runs (and fails on the missing model).
  const Result r = run("generate --model /nonexistent --prompt --help", /*capture_stderr=*/true);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("/nonexistent"), std::string::npos) << r.out;
}

TEST_F(CliHelp, UnknownCommandHelpIsAUsageError) {
  EXPECT_EQ(run("help no-such-command").exit_code, 2);
  EXPECT_EQ(run("no-such-command --help").exit_code, 2);
}

TEST_F(CliHelp, PrefixCacheSaltIsAnEngineFlag) {
  // Accepted by every command that builds an engine: the run fails on the model, not the flag.
  for (const char* cmd : {"generate --prompt hi", "chat", "serve", "bench offline"}) {
    const Result r = run(std::string(cmd) + " --prefix-cache-salt pinned --model /nonexistent",
                         /*capture_stderr=*/true);
    if (std::string(cmd) == "serve" && r.out.find("unknown command") != std::string::npos)
      continue;  // built without the server
    EXPECT_EQ(r.out.find("unknown flag"), std::string::npos) << cmd << ": " << r.out;
    EXPECT_EQ(r.exit_code, 1) << cmd << ": " << r.out;
  }
  // And it runs: a pinned salt on a real model.
  const Result ok = run("generate --model " + testing::tiny_model_dir() +
                        " --prompt hi --max-tokens 2 --threads 1 --prefix-cache-salt pinned");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
}

}  // namespace
}  // namespace herd
