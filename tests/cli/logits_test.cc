// `herd logits` on a tiny model (CPU): the JSON fields, the .npy file's header and size, the
// greedy continuation agreeing with a prefill over the longer prompt, and usage errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/api/engine_test_util.h"
#include "tests/common/run_command.h"

namespace herd {
namespace {

std::string run(const std::string& cmd, int* status) { return testing::run_command(cmd, status); }

class Logits : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
  }
  std::string base() const {
    return std::string(HERD_BINARY) + " logits --model " + testing::tiny_model_dir() +
           " --threads 2";
  }
};

TEST_F(Logits, WritesNpyAndGreedyContinuation) {
  testing::ScratchDir dir;
  const std::string npy = dir.path() + "/l.npy";
  int status = 0;
  const std::string out =
      run(base() + " --prompt-ids 1,5,9,33,2 --greedy 6 --out " + npy + " 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << out;
  const auto j = nlohmann::json::parse(out);
  const int64_t vocab = j["vocab"].get<int64_t>();
  ASSERT_GT(vocab, 0);
  EXPECT_EQ(j["prompt_len"].get<int>(), 5);
  EXPECT_EQ(j["device"].get<std::string>(), "cpu");
  const auto top1 = j["top1"].get<std::vector<int>>();
  const auto greedy = j["greedy"].get<std::vector<int>>();
  ASSERT_EQ(top1.size(), 5u);
  ASSERT_EQ(greedy.size(), 6u);
  EXPECT_EQ(greedy[0], top1.back());

  // .npy v1.0: 10-byte preamble + header padded to 64 bytes, then 5 x vocab float32.
  std::ifstream f(npy, std::ios::binary);
  ASSERT_TRUE(f.good());
  std::string head(128, '\0');
  f.read(head.data(), 128);
  EXPECT_EQ(head.substr(1, 5), "NUMPY");
  const size_t header_len = size_t(uint8_t(head[8])) | size_t(uint8_t(head[9])) << 8;
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_NE(head.find("'shape': (5, " + std::to_string(vocab) + ")"), std::string::npos) << head;
  EXPECT_EQ(std::filesystem::file_size(npy), 10 + header_len + 5 * size_t(vocab) * 4);

  // The continuation's decode steps agree with one prefill over prompt + continuation.
  std::string ids = "1,5,9,33,2";
  for (size_t i = 0; i + 1 < greedy.size(); ++i) ids += "," + std::to_string(greedy[i]);
  const std::string out2 = run(base() + " --prompt-ids " + ids + " 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << out2;
  const auto top1_long = nlohmann::json::parse(out2)["top1"].get<std::vector<int>>();
  ASSERT_EQ(top1_long.size(), 10u);
  for (size_t i = 0; i < greedy.size(); ++i) EXPECT_EQ(top1_long[4 + i], greedy[i]) << i;
}

TEST_F(Logits, UsageErrors) {
  int status = 0;
  run(base() + " --prompt-ids 1,x,3 2>/dev/null", &status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  run(base() + " --prompt-ids 99999999 2>/dev/null", &status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  run(base() + " --prompt-ids 1 --device tpu 2>/dev/null", &status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace herd
