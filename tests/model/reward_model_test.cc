// Reward models (issue 12 part 1): LlamaForSequenceClassification configs parse (labels), the
// `score.weight` head loads in place of lm_head, and the scores of several prompts run as one
// padding-free varlen step equal the independent numpy reference (tests/reference/llama_ref.py
// --score) within kTolerance.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/llama.h"
#include "engine/model/make_model.h"
#include "engine/model/weights.h"
#include "kernels/backend.h"
#include "tests/model/checkpoint_test_util.h"
#include "tests/reference/llama_ref_runner.h"

namespace herd {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::ordered_json;

// fp32 weights, float32 engine math vs float64 reference: the same bound as the logits test
// (tests/api/reference_logits_test.cc), on scores of a few units.
constexpr float kTolerance = 1e-3f;

std::string make_rm(const testing::ScratchDir& dir, const std::string& shape = "tiny-rm") {
  MakeModelOptions o;
  o.shape = shape;
  o.output = dir.path();
  o.seed = 11;
  o.dtype = DType::kF32;
  o.threads = 2;
  make_model(o);
  return dir.path();
}

std::vector<float> reference_scores(const std::string& dir, const std::vector<int32_t>& ids) {
  return testing::run_llama_ref(dir, "--score --ids " + testing::id_list(ids))["scores"]
      .get<std::vector<float>>();
}

std::vector<int32_t> prompt(int len, int salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < len; ++i) p.push_back(int32_t((i * 29 + salt * 53 + 7) % 251));
  return p;
}

TEST(RewardModelConfig, MakeModelWritesASequenceClassifier) {
  testing::ScratchDir dir;
  const ModelConfig c = load_model_config(make_rm(dir));
  EXPECT_TRUE(c.is_reward_model());
  EXPECT_EQ(c.num_labels, 1);
  EXPECT_EQ(c.head_rows(), 1);
  ASSERT_EQ(c.id2label.size(), 1u);
  EXPECT_EQ(c.id2label[0], "LABEL_0");
  const LlamaWeights w = load_llama_weights(dir.path(), c);
  EXPECT_EQ(w.lm_head.rows, 1);
  EXPECT_EQ(w.lm_head.cols, c.hidden_size);
}

TEST(RewardModelConfig, LabelsFromId2LabelNumLabelsOrDefault) {
  testing::ScratchDir dir;
  json j = make_model_config_json("tiny-rm", DType::kF32);
  j["id2label"] = {{"1", "good"}, {"0", "bad"}};
  testing::write_json(dir / "config.json", j);
  ModelConfig c = load_model_config(dir.path());
  EXPECT_EQ(c.num_labels, 2);
  EXPECT_EQ(c.id2label, (std::vector<std::string>{"bad", "good"}));

  j.erase("id2label");
  j["num_labels"] = 3;
  testing::write_json(dir / "config.json", j);
  c = load_model_config(dir.path());
  EXPECT_EQ(c.num_labels, 3);
  EXPECT_EQ(c.id2label.back(), "LABEL_2");

  j.erase("num_labels");  // transformers' default
  testing::write_json(dir / "config.json", j);
  EXPECT_EQ(load_model_config(dir.path()).num_labels, 2);

  // A causal LM has no labels.
  testing::write_json(dir / "config.json", make_model_config_json("tiny", DType::kF32));
  EXPECT_FALSE(load_model_config(dir.path()).is_reward_model());
}

TEST(RewardModelConfig, BadLabelsNameTheField) {
  testing::ScratchDir dir;
  json j = make_model_config_json("tiny-rm", DType::kF32);
  j["num_labels"] = 2;  // id2label has one
  testing::write_json(dir / "config.json", j);
  try {
    load_model_config(dir.path());
    FAIL() << "mismatched num_labels accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("num_labels"));
  }
  j.erase("num_labels");
  j["id2label"] = {{"x", "LABEL_0"}};
  testing::write_json(dir / "config.json", j);
  try {
    load_model_config(dir.path());
    FAIL() << "bad id2label key accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("id2label"));
  }
}

TEST(RewardModelWeights, MissingScoreHeadIsAnError) {
  // A causal checkpoint relabelled as a classifier has lm_head, not score.weight.
  testing::ScratchDir dir;
  MakeModelOptions o;
  o.shape = "tiny";
  o.output = dir.path();
  o.dtype = DType::kF32;
  o.threads = 2;
  o.write_tokenizer = false;
  make_model(o);
  testing::write_json(dir / "config.json", make_model_config_json("tiny-rm", DType::kF32));
  const ModelConfig c = load_model_config(dir.path());
  try {
    load_llama_weights(dir.path(), c);
    FAIL() << "loaded a classifier without score.weight";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("score.weight"));
  }
}

// Three prompts of different lengths in one varlen step (no padding), the score row of each
// being its last token: against the reference run on each prompt alone.
TEST(RewardModelScores, VarlenBatchMatchesNumpyReference) {
  if (!testing::have_numpy()) GTEST_SKIP() << testing::kRefPython << " with numpy not available";
  testing::ScratchDir dir;
  const std::string path = make_rm(dir);
  const ModelConfig cfg = load_model_config(path);
  auto weights = std::make_shared<const LlamaWeights>(load_llama_weights(path, cfg));
  auto backend = make_cpu_backend(2);
  const int bs = 16, blocks_per_seq = 4;
  KvCache kv(*backend, cfg, /*num_blocks=*/3 * blocks_per_seq, bs);
  LlamaModel model(cfg, weights, *backend, /*max_tokens=*/256, /*max_seqs=*/8);
  const std::vector<std::vector<int32_t>> prompts = {prompt(37, 1), prompt(5, 2), prompt(50, 3)};
  StepInput in;
  in.max_blocks_per_seq = blocks_per_seq;
  in.query_start.push_back(0);
  for (size_t s = 0; s < prompts.size(); ++s) {
    const int first_block = int(s) * blocks_per_seq;
    for (size_t p = 0; p < prompts[s].size(); ++p) {
      in.token_ids.push_back(prompts[s][p]);
      in.positions.push_back(int32_t(p));
      in.slot_mapping.push_back(int32_t((first_block + int(p) / bs) * bs + int(p) % bs));
    }
    in.query_start.push_back(int32_t(in.token_ids.size()));
    in.seq_lens.push_back(int32_t(prompts[s].size()));
    in.logits_rows.push_back(int32_t(in.token_ids.size()) - 1);
    for (int b = 0; b < blocks_per_seq; ++b) in.block_tables.push_back(first_block + b);
  }
  std::vector<float> scores(prompts.size() * size_t(cfg.num_labels));
  model.forward(in, kv, scores.data());
  float worst = 0, scale = 0;
  for (size_t s = 0; s < prompts.size(); ++s) {
    const std::vector<float> ref = reference_scores(path, prompts[s]);
    ASSERT_EQ(ref.size(), size_t(cfg.num_labels));
    for (size_t l = 0; l < ref.size(); ++l) {
      worst = std::max(worst, std::fabs(ref[l] - scores[s * ref.size() + l]));
      scale = std::max(scale, std::fabs(ref[l]));
    }
  }
  EXPECT_LE(worst, kTolerance) << "max |engine - reference| over " << prompts.size()
                               << " prompts (scores up to " << scale << ")";
  EXPECT_GT(scale, 0.05f) << "scores too small for the comparison to mean anything";
  // Different prompts get different scores (the head reads each sequence's own last token).
  EXPECT_NE(scores[0], scores[1]);
}

}  // namespace
}  // namespace herd
