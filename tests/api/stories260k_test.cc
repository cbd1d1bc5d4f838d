// Issue #2 acceptance: convert-llama2c + generate on ../shared/testdata/stories260K (empty
// prompt = BOS alone, greedy, 200 tokens) reproduces expected.txt byte for byte and the 200
// ids of expected_greedy_ids_n200.derived.txt — through the Engine and through the `herd`
// binary's commands exactly as a user types them.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "engine/api/engine.h"
#include "engine/api/prompt.h"
#include "engine/model/convert_llama2c.h"
#include "tests/common/run_command.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

const std::string kData = std::string(HERD_TESTDATA_DIR) + "/stories260K";

bool have_data() {
  return std::filesystem::exists(kData + "/stories260K.bin") &&
         std::filesystem::exists(kData + "/expected.txt") &&
         std::filesystem::exists(kData + "/expected_greedy_ids_n200.derived.txt");
}

std::vector<int32_t> expected_ids() {
  std::istringstream in(testing::read_file(kData + "/expected_greedy_ids_n200.derived.txt"));
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::string run(const std::string& cmd, int* status) { return testing::run_command(cmd, status); }

TEST(Stories260K, EngineGreedyReproducesExpectedTextAndIds) {
  if (!have_data()) GTEST_SKIP() << "stories260K test data not found under " << kData;
  testing::ScratchDir dir;
  convert_llama2c(kData + "/stories260K.bin", kData + "/tok512.bin", dir.path());
  EngineOptions o;
  o.model_dir = dir.path();
  o.threads = 2;
  auto e = Engine::create(o);
  Request r;
  r.id = "stories";
  r.prompt_ids = encode_prompt(e->tokenizer(), "", /*add_bos=*/true);
  ASSERT_EQ(r.prompt_ids.size(), 1u);
  r.params.temperature = 0;
  r.params.max_tokens = 200;
  std::vector<Request> reqs;
  reqs.push_back(std::move(r));
  auto out = e->generate(std::move(reqs));
  EXPECT_EQ(out[0][0].token_ids, expected_ids());
  EXPECT_EQ(out[0][0].text, testing::read_file(kData + "/expected.txt"));
  EXPECT_EQ(out[0][0].finish_reason, FinishReason::kLength);
}

TEST(Stories260K, HerdConvertAndGenerateCommandsReproduceExpectedText) {
  if (!have_data()) GTEST_SKIP() << "stories260K test data not found under " << kData;
  if (!std::filesystem::exists(HERD_BINARY)) GTEST_SKIP() << HERD_BINARY << " not built";
  testing::ScratchDir dir;
  int status = 0;
  run(std::string(HERD_BINARY) + " convert-llama2c --checkpoint " + kData +
          "/stories260K.bin --tokenizer " + kData + "/tok512.bin --output " + dir.path() +
          " 2>/dev/null",
      &status);
  ASSERT_EQ(status, 0);
  const std::string text = run(std::string(HERD_BINARY) + " generate --model " + dir.path() +
                                   " --prompt '' --max-tokens 200 --temperature 0 2>/dev/null",
                               &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(text, testing::read_file(kData + "/expected.txt"));
}

}  // namespace
}  // namespace herd
