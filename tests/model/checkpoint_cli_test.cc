// The herd binary on checkpoints: make-model then check-model succeed; a broken checkpoint
// makes check-model (and convert-llama2c on a broken input) exit non-zero with exactly one
// clear line on stderr naming the file at fault.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct RunResult {
  int status = -1;
  std::string out, err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY))
      GTEST_SKIP() << "herd binary not built at " << HERD_BINARY;
  }
  RunResult run(const std::string& args) {
    const std::string out = tmp_ / "stdout", err = tmp_ / "stderr";
    const std::string cmd =
        std::string("'") + HERD_BINARY + "' " + args + " >'" + out + "' 2>'" + err + "'";
    int rc = std::system(cmd.c_str());
    RunResult r;
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = testing::read_file(out);
    r.err = testing::read_file(err);
    return r;
  }
  static int lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

  testing::ScratchDir tmp_;
};

TEST_F(CliTest, MakeModelThenCheckModel) {
  const std::string model = tmp_ / "tiny";
  RunResult r = run("make-model --shape tiny --seed 3 --output '" + model + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(std::filesystem::exists(model + "/" + f)) << f;
  r = run("check-model --model '" + model + "'");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("ok"), HasSubstr("4 layers"), HasSubstr("BF16")));
}

TEST_F(CliTest, BrokenCheckpointFailsWithOneLine) {
  const std::string model = tmp_ / "tiny";
  ASSERT_EQ(run("make-model --output '" + model + "'").status, 0);
  const std::string st = model + "/model.safetensors";
  std::string bytes = testing::read_file(st);
  testing::write_file(st, bytes.substr(0, bytes.size() - 1000));
  RunResult r = run("check-model --model '" + model + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_THAT(
      r.err, AllOf(StartsWith("herd check-model: error: "), HasSubstr(st), HasSubstr("truncated")));
}

TEST_F(CliTest, BrokenConfigFailsWithOneLine) {
  const std::string model = tmp_ / "tiny";
  ASSERT_EQ(run("make-model --output '" + model + "'").status, 0);
  testing::write_file(model + "/config.json", "{\"architectures\": [\"LlamaForCausalLM\"]");
  RunResult r = run("check-model --model '" + model + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr("config.json"), HasSubstr("invalid JSON")));
}

TEST_F(CliTest, ConvertMissingInputFailsWithOneLine) {
  RunResult r = run("convert-llama2c --checkpoint '" + (tmp_ / "nope.bin") + "' --tokenizer '" +
                    (tmp_ / "tok.bin") + "' --output '" + (tmp_ / "out") + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("nope.bin"));
}

TEST_F(CliTest, BadFlagsAreUsageErrors) {
  RunResult r = run("make-model --shape llama9 --output '" + (tmp_ / "x") + "'");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("llama9"));
  r = run("make-model --shape tiny");
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("--output"));
}

}  // namespace
}  // namespace herd
