// `herd bench offline` end to end on a tiny model: the JSON carries the fields issue #3 names,
// every configuration ran the same number of output tokens, and bad flags exit 2.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "tests/api/engine_test_util.h"
#include "tests/common/run_command.h"

namespace herd {
namespace {

std::string run(const std::string& cmd, int* status) { return testing::run_command(cmd, status); }

class BenchOffline : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
  }
  std::string base() const {
    return std::string(HERD_BINARY) + " bench offline --model " + testing::tiny_model_dir() +
           " --threads 2";
  }
};

TEST_F(BenchOffline, RejectionSamplingReportsRatiosOverEqualWork) {
  int status = 0;
  const std::string out = run(base() +
                                  " --workload rs --prompts 2 --prompt-len 40 "
                                  "--max-tokens 5 --n 3 --kv-blocks 12 --json 2>/dev/null",
                              &status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_GT(j["output_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["sharing_speedup"].get<double>(), 0);
  EXPECT_GT(j["reserve_vs_optimistic"].get<double>(), 0);
  for (const char* run : {"shared_reserve", "unshared_reserve", "shared_optimistic"})
    EXPECT_EQ(j["runs"][run]["output_tokens"].get<int>(), 2 * 3 * 5) << run;
  EXPECT_EQ(j["runs"]["shared_reserve"]["preemptions"].get<int>(), 0);
  EXPECT_EQ(j["runs"]["unshared_reserve"]["preemptions"].get<int>(), 0);
  EXPECT_TRUE(j.contains("command") && j.contains("machine") && j.contains("date"));
}

TEST_F(BenchOffline, ThroughputWorkloadRuns) {
  int status = 0;
  const std::string out = run(
      base() +
          " --workload throughput --prompts 3 --prompt-len 20 --max-tokens 4 --json 2>/dev/null",
      &status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["run"]["output_tokens"].get<int>(), 12);
}

TEST_F(BenchOffline, BadWorkloadIsAUsageError) {
  int status = 0;
  run(base() + " --workload nope 2>/dev/null", &status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace herd
