// Score requests (issue 12 part 1): an engine on a reward model (tiny-rm) answers every
// request with the scores of its last prompt token — prefill-only, finished when the prompt is
// computed, no output token and no KV block for one, prompt pages still shared through the
// prefix cache.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/common/error.h"
#include "engine/model/llama.h"
#include "engine/model/weights.h"
#include "tests/api/engine_test_util.h"

namespace herd {
namespace {

using testing::make_test_engine;
using testing::test_prompt;
using testing::tiny_engine_options;

EngineOptions rm_options(int num_blocks = 512) {
  EngineOptions o = tiny_engine_options(num_blocks);
  o.model_dir = testing::tiny_model_dir("tiny-rm");
  return o;
}

Request score_request(std::string id, std::vector<int32_t> prompt) {
  Request r;
  r.id = std::move(id);
  r.prompt_ids = std::move(prompt);
  return r;
}

// The head on the last token, by LlamaModel directly: the whole prompt in one step.
std::vector<float> direct_scores(const std::vector<int32_t>& ids) {
  const std::string& dir = testing::tiny_model_dir("tiny-rm");
  const ModelConfig cfg = load_model_config(dir);
  auto weights = std::make_shared<const LlamaWeights>(load_llama_weights(dir, cfg));
  auto backend = make_cpu_backend(2);
  const int bs = 16, blocks = int(ids.size() + bs - 1) / bs;
  KvCache kv(*backend, cfg, blocks, bs);
  LlamaModel model(cfg, weights, *backend, int(ids.size()), 1);
  StepInput in;
  in.token_ids = ids;
  for (int p = 0; p < int(ids.size()); ++p) {
    in.positions.push_back(p);
    in.slot_mapping.push_back(p);
  }
  in.query_start = {0, int(ids.size())};
  in.seq_lens = {int(ids.size())};
  in.max_blocks_per_seq = blocks;
  for (int b = 0; b < blocks; ++b) in.block_tables.push_back(b);
  in.logits_rows = {int(ids.size()) - 1};
  std::vector<float> s(size_t(cfg.num_labels));
  model.forward(in, kv, s.data());
  return s;
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "label " << i;
}

// Prompts of 5, 40 and 150 tokens (the last prefilled in chunks of 64: the engine's
// long-prefill cap) score as one whole-prompt forward does.
TEST(ScoreRequests, ScoresAreTheHeadOnTheLastPromptToken) {
  auto e = make_test_engine(rm_options());
  std::vector<Request> reqs;
  const std::vector<int> lens = {5, 40, 150};
  for (size_t i = 0; i < lens.size(); ++i)
    reqs.push_back(
        score_request(std::string("s").append(std::to_string(i)), test_prompt(lens[i], int(i))));
  const auto res = e->generate(reqs);
  ASSERT_EQ(res.size(), lens.size());
  for (size_t i = 0; i < lens.size(); ++i) {
    ASSERT_EQ(res[i].size(), 1u);
    const Output& o = res[i][0];
    EXPECT_EQ(o.error, "");
    EXPECT_EQ(o.finish_reason, FinishReason::kStop);
    EXPECT_TRUE(o.token_ids.empty());
    EXPECT_EQ(o.usage.prompt_tokens, lens[i]);
    EXPECT_EQ(o.usage.completion_tokens, 0);
    expect_near(o.scores, direct_scores(test_prompt(lens[i], int(i))), 1e-4f);
  }
  EXPECT_EQ(e->stats().generation_tokens, 0);
}

// A pool of exactly the prompt's blocks, under reserve admission: a generation request would
// need a block more for its first output token; a score request needs none.
TEST(ScoreRequests, NeverTakeABlockForAnOutputToken) {
  for (AdmissionPolicy policy : {AdmissionPolicy::kReserve, AdmissionPolicy::kOptimistic}) {
    EngineOptions o = rm_options(/*num_blocks=*/3);
    o.policy = policy;
    auto e = make_test_engine(o);
    EXPECT_EQ(e->max_model_len(), 48);
    const auto res = e->generate({score_request("full", test_prompt(48, 4))});
    EXPECT_EQ(res[0][0].error, "");
    EXPECT_EQ(res[0][0].scores.size(), 1u);
    const EngineStats s = e->stats();
    EXPECT_EQ(s.free_blocks, s.num_blocks);  // every block back (free or cached)
    EXPECT_EQ(s.preemptions, 0);
  }
}

TEST(ScoreRequests, PrefixCacheSharesPromptPages) {
  auto e = make_test_engine(rm_options());
  const std::vector<int32_t> p = test_prompt(70, 5);
  const auto first = e->generate({score_request("a", p)});
  std::vector<int32_t> longer = p;
  longer.push_back(9);
  const auto again = e->generate({score_request("b", p), score_request("c", longer)});
  EXPECT_EQ(first[0][0].usage.cached_prompt_tokens, 0);
  // Full blocks of the prompt are hits (the last token is always recomputed).
  EXPECT_EQ(again[0][0].usage.cached_prompt_tokens, 64);
  EXPECT_EQ(again[1][0].usage.cached_prompt_tokens, 64);
  expect_near(again[0][0].scores, first[0][0].scores, 1e-5f);
  expect_near(again[1][0].scores, direct_scores(longer), 1e-4f);
  EXPECT_GT(e->stats().prefix_hits_tokens, 0);
}

TEST(ScoreRequests, BadRequestsNameTheField) {
  auto e = make_test_engine(rm_options(/*num_blocks=*/4));  // max_model_len 64
  Request two = score_request("two", test_prompt(8, 1));
  two.params.n = 2;
  try {
    e->add_request(two, [](const Output&) {});
    FAIL() << "n = 2 accepted for a score request";
  } catch (const InvalidArgument& ex) {
    EXPECT_EQ(ex.param(), "n");
  }
  try {
    e->add_request(score_request("long", test_prompt(65, 1)), [](const Output&) {});
    FAIL() << "a prompt over max_model_len accepted";
  } catch (const InvalidArgument& ex) {
    EXPECT_EQ(ex.param(), "prompt");
  }
  try {
    e->add_request(score_request("empty", {}), [](const Output&) {});
    FAIL() << "an empty prompt accepted";
  } catch (const InvalidArgument& ex) {
    EXPECT_EQ(ex.param(), "prompt");
  }
  // The full max_model_len is allowed: nothing is generated.
  const auto res = e->generate({score_request("max", test_prompt(64, 2))});
  EXPECT_EQ(res[0][0].error, "");
  EXPECT_EQ(res[0][0].scores.size(), 1u);
}

}  // namespace
}  // namespace herd
