// `herd eval fp8` through the binary on the tiny make-model checkpoints: the JSON report's
// fields (stdout and --json agree), the baseline self-check (KL 0, 100% agreement), and the
// reward-score SVG.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/api/engine_test_util.h"
#include "tests/common/run_command.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using json = nlohmann::json;

class EvalFp8Command : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
    testing::write_file(dir_ / "prompts.txt", "hello there\n\nthe cat sat\n");
  }
  json run(const std::string& extra, int* status) {
    const std::string cmd = std::string("'") + HERD_BINARY + "' eval fp8 --model '" +
                            testing::tiny_model_dir() + "' --prompts '" + (dir_ / "prompts.txt") +
                            "' --max-tokens 6 --threads 2 " + extra + " 2>'" +
                            (dir_ / "stderr.txt") + "'";
    const std::string out = testing::run_command(cmd, status);
    return json::parse(out, nullptr, false);
  }
  testing::ScratchDir dir_;
};

TEST_F(EvalFp8Command, BaselineOnlyGivesZeroKlAndFullAgreement) {
  int status = 0;
  const json r = run("--baseline-only --json '" + (dir_ / "r.json") + "'", &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << testing::read_file(dir_ / "stderr.txt");
  ASSERT_FALSE(r.is_discarded());
  EXPECT_EQ(r, json::parse(testing::read_file(dir_ / "r.json")));
  EXPECT_EQ(r["prompts"], 2);
  EXPECT_EQ(r["max_tokens"], 6);
  EXPECT_GT(r["tokens_compared"].get<int>(), 0);
  EXPECT_EQ(r["kl"]["mean"].get<double>(), 0.0);
  EXPECT_EQ(r["kl"]["max"].get<double>(), 0.0);
  EXPECT_EQ(r["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(r["greedy_agreement"]["identical_fraction"].get<double>(), 1.0);
  for (const char* k : {"mean", "p50", "p99", "max", "min", "count"})
    EXPECT_TRUE(r["kl"].contains(k)) << k;
  EXPECT_EQ(r["per_prompt"].size(), 2u);
}

TEST_F(EvalFp8Command, Fp8WithRewardWritesReportAndPlot) {
  int status = 0;
  const json r = run("--reward '" + testing::tiny_model_dir("tiny-rm") +
                         "' --samples 2 --seed 5 --svg '" + (dir_ / "scores.svg") + "'",
                     &status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << testing::read_file(dir_ / "stderr.txt");
  ASSERT_FALSE(r.is_discarded());
  EXPECT_EQ(r["candidate"], "fp8 row-wise (quantized at load)");
  EXPECT_EQ(r["activation_scale_ub"].get<double>(), 1200.0);
  EXPECT_EQ(r["quantized_layers"], json::parse("[1, 2]"));
  EXPECT_GE(r["kl"]["mean"].get<double>(), 0.0);
  for (const char* k : {"top1_agreement", "greedy_agreement", "reward", "activation_cap"})
    EXPECT_TRUE(r.contains(k)) << k;
  EXPECT_EQ(r["reward"]["responses"], 4);
  EXPECT_EQ(r["reward"]["reference"]["count"], 4);
  EXPECT_EQ(r["reward"]["candidate"]["count"], 4);
  const std::string svg = testing::read_file(dir_ / "scores.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("FP8 row-wise (n=4)"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(testing::read_file(dir_ / "stderr.txt").find("cap demo"), std::string::npos);
}

TEST_F(EvalFp8Command, SvgWithoutRewardIsAUsageError) {
  int status = 0;
  run("--svg '" + (dir_ / "x.svg") + "'", &status);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace herd
