// The BF16 reference: an F32 checkpoint rounded to BF16 tensor by tensor (RNE), tied
// embeddings kept as one tensor, and the report's reference then BF16.
#include "engine/eval/bf16_cast.h"

#include <gtest/gtest.h>

#include "engine/common/dtype.h"
#include "engine/eval/fp8_eval.h"
#include "engine/model/config.h"
#include "tests/model/tiny_model.h"

namespace herd::eval {
namespace {

TEST(Bf16Cast, RoundsEveryTensorAndKeepsTiesTied) {
  const std::string dir = testing::tiny_model_dir("tiny-tied");
  const ModelConfig cfg = load_model_config(dir);
  const LlamaWeights w = load_llama_weights(dir, cfg);
  ASSERT_EQ(w.dtype, DType::kF32);
  const LlamaWeights b = cast_llama_weights_bf16(w);
  EXPECT_EQ(b.dtype, DType::kBF16);
  for (const Tensor* t : {&b.embed_tokens, &b.norm, &b.lm_head, &b.layers[1].gate_proj,
                          &b.layers[0].input_layernorm, &b.layers[3].o_proj})
    EXPECT_EQ(t->dtype, DType::kBF16);
  EXPECT_EQ(b.embed_tokens.data, b.lm_head.data);  // tied: one tensor
  const auto* src = static_cast<const float*>(w.layers[2].up_proj.data);
  const auto* dst = static_cast<const uint16_t*>(b.layers[2].up_proj.data);
  for (int64_t i = 0; i < w.layers[2].up_proj.numel(); i += 97)
    EXPECT_EQ(dst[i], f32_to_bf16(src[i])) << i;
  EXPECT_EQ(cast_llama_weights_bf16(b).layers[2].up_proj.data, b.layers[2].up_proj.data);
}

TEST(Bf16Cast, ReportRunsABf16ReferenceAgainstFp8) {
  auto be = make_cpu_backend(2);
  Fp8EvalOptions o;
  o.model_dir = testing::tiny_model_dir();
  o.prompts = {"hello there"};
  o.max_tokens = 6;
  o.reference_bf16 = true;
  o.baseline_only = true;
  const auto self = run_fp8_eval(*be, o, nullptr).report;
  EXPECT_EQ(self["reference"], "BF16");
  EXPECT_EQ(self["stored_dtype"], "F32");
  EXPECT_EQ(self["kl"]["max"].get<double>(), 0.0);
  o.baseline_only = false;
  const auto fp8 = run_fp8_eval(*be, o, nullptr).report;
  EXPECT_GT(fp8["max_abs_logit_diff"]["max"].get<double>(), 0.0);
  EXPECT_GE(fp8["kl"]["min"].get<double>(), 0.0);
}

}  // namespace
}  // namespace herd::eval
