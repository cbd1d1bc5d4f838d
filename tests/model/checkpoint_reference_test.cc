// tests/reference/llama_ref.py (the independent numpy forward other tests compare the engine
// against) checked on its own: on the converted stories260K it must reproduce llama2.c's greedy
// tokens — which also proves convert-llama2c's RoPE permutation — and on a make-model tiny
// checkpoint its logits must be finite, deterministic and position-dependent.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "engine/model/convert_llama2c.h"
#include "engine/model/make_model.h"
#include "tests/model/checkpoint_test_util.h"
#include "tests/reference/llama_ref_runner.h"

namespace herd {
namespace {

TEST(ReferenceForward, ReproducesLlama2cGreedyTokensOnConvertedStories) {
  const std::string d = std::string(HERD_TESTDATA_DIR) + "/stories260K";
  if (!std::filesystem::exists(d + "/stories260K.bin") ||
      !std::filesystem::exists(d + "/expected_greedy_ids_n200.derived.txt"))
    GTEST_SKIP() << "stories260K test data not found under " << d;
  if (!testing::have_numpy()) GTEST_SKIP() << testing::kRefPython << " with numpy not available";
  testing::ScratchDir out;
  convert_llama2c(d + "/stories260K.bin", d + "/tok512.bin", out.path());
  std::istringstream expected_text(testing::read_file(d + "/expected_greedy_ids_n200.derived.txt"));
  std::vector<int> expected;
  for (int id; expected_text >> id && expected.size() < 40;) expected.push_back(id);
  ASSERT_EQ(expected.size(), 40u);
  // The sequence starts from BOS alone (README).
  nlohmann::json r = testing::run_llama_ref(out.path(), "--ids 1 --greedy 40");
  EXPECT_EQ(r["generated"].get<std::vector<int>>(), expected);
}

TEST(ReferenceForward, TinyLogitsFiniteDeterministicAndPositionDependent) {
  if (!testing::have_numpy()) GTEST_SKIP() << testing::kRefPython << " with numpy not available";
  testing::ScratchDir dir;
  MakeModelOptions o;
  o.output = dir.path();
  o.seed = 11;
  o.write_tokenizer = false;
  make_model(o);
  nlohmann::json a = testing::run_llama_ref(dir.path(), "--ids 256,72,101,108,108,111");
  nlohmann::json b = testing::run_llama_ref(dir.path(), "--ids 256,72,101,108,108,111");
  EXPECT_EQ(a, b);
  auto logits = a["logits"].get<std::vector<std::vector<double>>>();
  ASSERT_EQ(logits.size(), 6u);
  for (const auto& row : logits) {
    ASSERT_EQ(row.size(), 512u);
    double sq = 0;
    for (double v : row) {
      ASSERT_TRUE(std::isfinite(v));
      sq += v * v;
    }
    // Logits of a few units: neither collapsed nor exploded through the 4 layers.
    const double rms = std::sqrt(sq / double(row.size()));
    EXPECT_GT(rms, 0.5);
    EXPECT_LT(rms, 20.0);
  }
  EXPECT_NE(logits[1], logits[2]);
  // Causality: a prompt's prefix gets the same logits as the shorter prompt.
  auto prefix = testing::run_llama_ref(dir.path(), "--ids 256,72,101")["logits"]
                    .get<std::vector<std::vector<double>>>();
  for (size_t t = 0; t < 3; ++t)
    for (size_t v = 0; v < 512; ++v) ASSERT_NEAR(prefix[t][v], logits[t][v], 1e-9);
}

}  // namespace
}  // namespace herd
