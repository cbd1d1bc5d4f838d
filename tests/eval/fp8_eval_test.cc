// The whole report on the tiny make-model checkpoints: the model against itself gives KL 0 and
// full agreement; against its FP8 quantization, finite non-negative KL and the quantized
// layers of the paper's rule; reward scores for the same number of responses per model.
#include "engine/eval/fp8_eval.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/common/error.h"
#include "engine/eval/eval_model.h"
#include "engine/eval/eval_stats.h"
#include "engine/eval/teacher_forcing.h"
#include "engine/model/fp8_quantize.h"
#include "engine/model/weights.h"
#include "tests/model/tiny_model.h"

namespace herd::eval {
namespace {

Fp8EvalOptions tiny_options() {
  Fp8EvalOptions o;
  o.model_dir = testing::tiny_model_dir();
  o.prompts = {"hello there", "a b c"};
  o.max_tokens = 8;
  o.samples = 2;
  return o;
}

TEST(Fp8Eval, BaselineAgainstItselfIsExact) {
  auto be = make_cpu_backend(2);
  Fp8EvalOptions o = tiny_options();
  o.baseline_only = true;
  o.reward_dir = testing::tiny_model_dir("tiny-rm");
  const auto res = run_fp8_eval(*be, o, nullptr);
  const auto& r = res.report;
  EXPECT_EQ(r["tokens_compared"].get<int64_t>(), 16);  // no stop token in the byte vocab here
  EXPECT_EQ(r["kl"]["max"].get<double>(), 0.0);
  EXPECT_EQ(r["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(r["greedy_agreement"]["min"].get<double>(), 8.0);
  EXPECT_EQ(r["greedy_agreement"]["identical_fraction"].get<double>(), 1.0);
  ASSERT_EQ(res.reference_scores.size(), 4u);
  EXPECT_EQ(res.reference_scores, res.candidate_scores);
  EXPECT_EQ(r["reward"]["identical_responses"].get<int64_t>(), 4);
  EXPECT_TRUE(r["quantized_layers"].empty());
}

TEST(Fp8Eval, Fp8AgainstBaselineReportsEveryFigure) {
  auto be = make_cpu_backend(2);
  Fp8EvalOptions o = tiny_options();
  o.reward_dir = testing::tiny_model_dir("tiny-rm");
  const auto res = run_fp8_eval(*be, o, nullptr);
  const auto& r = res.report;
  EXPECT_EQ(r["quantized_layers"],
            nlohmann::ordered_json::parse("[1, 2]"));  // 4 layers: first, last kept
  EXPECT_EQ(r["tokens_compared"].get<int64_t>(), 16);
  const double kl_mean = r["kl"]["mean"].get<double>();
  EXPECT_TRUE(std::isfinite(kl_mean));
  EXPECT_GE(r["kl"]["min"].get<double>(), 0.0);
  EXPECT_LE(r["kl"]["p50"].get<double>(), r["kl"]["p99"].get<double>());
  EXPECT_LE(r["kl"]["p99"].get<double>(), r["kl"]["max"].get<double>());
  EXPECT_GT(r["max_abs_logit_diff"]["max"].get<double>(), 0.0);  // FP8 did change the logits
  const double top1 = r["top1_agreement"].get<double>();
  EXPECT_GE(top1, 0.0);
  EXPECT_LE(top1, 1.0);
  EXPECT_EQ(res.reference_scores.size(), 4u);
  EXPECT_EQ(res.candidate_scores.size(), 4u);
  ASSERT_EQ(r["activation_cap"].size(), 3u);
  const auto& big = r["activation_cap"][2];
  EXPECT_EQ(big["weight"], "model.layers.1.mlp.gate_proj.weight");
  EXPECT_LT(big["capped"]["ordinary_underflow_fraction"].get<double>(),
            big["uncapped"]["ordinary_underflow_fraction"].get<double>());
}

TEST(TeacherForcing, SameModelGivesZeroKlAndFullTop1) {
  auto be = make_cpu_backend(2);
  const std::string dir = testing::tiny_model_dir();
  const ModelConfig cfg = load_model_config(dir);
  auto w = std::make_shared<const LlamaWeights>(load_llama_weights(dir, cfg));
  EvalModel a(cfg, w, *be, 32), b(cfg, w, *be, 32);
  const std::vector<int32_t> prompt = {1, 72, 101, 108};
  GenerateOptions g;
  g.max_tokens = 10;
  const auto cont = a.generate(prompt, g);
  ASSERT_EQ(cont.size(), 10u);
  // The greedy continuation is the argmax of the teacher-forced logits.
  std::vector<int32_t> ids = prompt;
  ids.insert(ids.end(), cont.begin(), cont.end() - 1);
  const auto rows = a.prefill_logits(ids, int(prompt.size()) - 1);
  for (size_t i = 0; i < cont.size(); ++i)
    EXPECT_EQ(argmax(&rows[i * size_t(cfg.vocab_size)], cfg.vocab_size), cont[i]) << i;
  TokenComparison c;
  teacher_force(a, b, prompt, cont, c);
  ASSERT_EQ(c.tokens(), 10);
  EXPECT_EQ(c.top1_agree, 10);
  for (double kl : c.kl) EXPECT_EQ(kl, 0.0);
  for (double d : c.max_abs_logit_diff) EXPECT_EQ(d, 0.0);
  ASSERT_EQ(c.reference_entropy.size(), 10u);
  EXPECT_GT(c.reference_entropy[0], 0.0);
}

TEST(Fp8Eval, RefusesQuantizedCheckpointsAndSwappedModels) {
  auto be = make_cpu_backend(1);
  herd::testing::ScratchDir q;
  quantize_checkpoint_fp8(testing::tiny_model_dir(), q.path(), {});
  Fp8EvalOptions o = tiny_options();
  o.model_dir = q.path();
  EXPECT_THROW(run_fp8_eval(*be, o, nullptr), InvalidArgument);  // already FP8
  o.model_dir = testing::tiny_model_dir("tiny-rm");
  EXPECT_THROW(run_fp8_eval(*be, o, nullptr), InvalidArgument);  // a reward model as policy
  o = tiny_options();
  o.reward_dir = testing::tiny_model_dir();
  EXPECT_THROW(run_fp8_eval(*be, o, nullptr), InvalidArgument);  // a policy as reward model
}

TEST(Fp8Eval, SampleSeedsDependOnlyOnTheirInputs) {
  EXPECT_EQ(eval_sample_seed(3, 1, 2), eval_sample_seed(3, 1, 2));
  EXPECT_NE(eval_sample_seed(3, 1, 2), eval_sample_seed(3, 2, 1));
  EXPECT_NE(eval_sample_seed(3, 1, 2), eval_sample_seed(4, 1, 2));
}

}  // namespace
}  // namespace herd::eval
