// make-model: the tiny shape writes a loadable checkpoint, the same seed gives the same bytes
// and another seed other bytes, and every real shape's config parses to Meta's numbers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/make_model.h"
#include "engine/model/weights.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using ::testing::HasSubstr;

void make(const std::string& dir, uint64_t seed, const std::string& shape = "tiny") {
  MakeModelOptions o;
  o.shape = shape;
  o.output = dir;
  o.seed = seed;
  o.write_tokenizer = false;
  make_model(o);
}

TEST(MakeModel, TinyLoadsBackWithItsConfig) {
  testing::ScratchDir dir;
  make(dir.path(), 1);
  ModelConfig c = load_model_config(dir.path());
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_hidden_layers, 4);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_TRUE(c.rope_scaling.llama3);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 256);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{257, 264, 265}));
  EXPECT_DOUBLE_EQ(c.default_temperature, 0.6);
  LlamaWeights w = load_llama_weights(dir.path(), c);
  EXPECT_EQ(w.layers.size(), 4u);
  // Every value finite.
  for (const Tensor* t : {&w.embed_tokens, &w.lm_head, &w.layers[0].down_proj}) {
    for (int64_t i = 0; i < t->numel(); ++i)
      ASSERT_TRUE(std::isfinite(bf16_to_f32(t->as<uint16_t>()[i])));
  }
}

TEST(MakeModel, TinyScalesAllThreeRopeBands) {
  testing::ScratchDir dir;
  make(dir.path(), 1);
  ModelConfig c = load_model_config(dir.path());
  std::vector<float> f = rope_inv_freq(c);
  int unchanged = 0, divided = 0, between = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const double base = std::pow(c.rope_theta, -2.0 * double(i) / double(c.head_dim));
    if (std::fabs(f[i] - base) < 1e-6 * base)
      ++unchanged;
    else if (std::fabs(f[i] - base / 8) < 1e-6 * base)
      ++divided;
    else
      ++between;
  }
  EXPECT_GT(unchanged, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(between, 0);
}

TEST(MakeModel, SameSeedSameBytesOtherSeedOtherBytes) {
  testing::ScratchDir a, b, c;
  make(a.path(), 42);
  make(b.path(), 42);
  make(c.path(), 43);
  const std::string fa = testing::read_file(a / "model.safetensors");
  EXPECT_GT(fa.size(), 100000u);
  EXPECT_EQ(fa, testing::read_file(b / "model.safetensors"));
  EXPECT_NE(fa, testing::read_file(c / "model.safetensors"));
  EXPECT_EQ(testing::read_file(a / "config.json"), testing::read_file(c / "config.json"));
}

TEST(MakeModel, BuiltInTokenizerAgreesWithConfig) {
  testing::ScratchDir dir;
  MakeModelOptions o;
  o.output = dir.path();
  make_model(o);
  ModelConfig c = load_model_config(dir.path());
  auto tok = load_tokenizer(dir.path());
  EXPECT_EQ(tok->vocab_size(), c.vocab_size);
  EXPECT_EQ(tok->token_id("<|begin_of_text|>"), c.bos_token_id);
  for (const char* eos : {"<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"}) {
    auto id = tok->token_id(eos);
    ASSERT_TRUE(id.has_value()) << eos;
    EXPECT_NE(std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), *id), c.eos_token_ids.end())
        << eos;
  }
  const std::string text = "Hello, world!";
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
}

TEST(MakeModel, NormalGeneratorStatistics) {
  const int n = 200000;
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    double v = make_model_normal(5, 99, uint64_t(i));
    sum += v;
    sq += v * v;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(sq / n), 1.0, 0.01);
  EXPECT_NE(make_model_normal(5, 99, 0), make_model_normal(6, 99, 0));
  EXPECT_NE(make_model_normal(5, 99, 0), make_model_normal(5, 98, 0));
  EXPECT_EQ(make_model_normal(5, 99, 12345), make_model_normal(5, 99, 12345));
}

TEST(MakeModel, CopiesGivenTokenizerAndRejectsTooLargeOne) {
  testing::ScratchDir tok, out;
  testing::write_json(tok / "tokenizer.json",
                      {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 511}}}}}});
  testing::write_json(tok / "tokenizer_config.json", {{"bos_token", "a"}});
  MakeModelOptions o;
  o.output = out.path();
  o.tokenizer_dir = tok.path();
  make_model(o);
  EXPECT_EQ(testing::read_file(out / "tokenizer.json"), testing::read_file(tok / "tokenizer.json"));
  EXPECT_TRUE(std::filesystem::exists(out / "tokenizer_config.json"));

  testing::write_json(tok / "tokenizer.json",
                      {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}}},
                       {"added_tokens", {{{"id", 128000}, {"content", "<|x|>"}}}}});
  try {
    make_model(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("128000"));
    EXPECT_THAT(e.what(), HasSubstr("tokenizer.json"));
  }
}

TEST(MakeModel, UnknownShape) {
  testing::ScratchDir dir;
  MakeModelOptions o;
  o.shape = "llama3-7b";
  o.output = dir.path();
  EXPECT_THROW(make_model(o), Error);
}

struct RealShape {
  const char* name;
  int64_t hidden, intermediate, layers, heads, kv_heads, head_dim;
  bool tied;
  double factor;
};

TEST(MakeModel, RealShapeConfigsParse) {
  const RealShape shapes[] = {
      {"llama3.2-1b", 2048, 8192, 16, 32, 8, 64, true, 32.0},
      {"llama3.2-3b", 3072, 8192, 28, 24, 8, 128, true, 32.0},
      {"llama3-8b", 4096, 14336, 32, 32, 8, 128, false, 8.0},
      {"llama3-70b", 8192, 28672, 80, 64, 8, 128, false, 8.0},
      {"llama3-405b", 16384, 53248, 126, 128, 8, 128, false, 8.0},
  };
  for (const RealShape& s : shapes) {
    testing::ScratchDir dir;
    testing::write_json(dir / "config.json", make_model_config_json(s.name, DType::kBF16));
    testing::write_json(dir / "generation_config.json", make_model_generation_config_json(s.name));
    ModelConfig c = load_model_config(dir.path());
    EXPECT_EQ(c.vocab_size, 128256) << s.name;
    EXPECT_EQ(c.hidden_size, s.hidden) << s.name;
    EXPECT_EQ(c.intermediate_size, s.intermediate) << s.name;
    EXPECT_EQ(c.num_hidden_layers, s.layers) << s.name;
    EXPECT_EQ(c.num_attention_heads, s.heads) << s.name;
    EXPECT_EQ(c.num_key_value_heads, s.kv_heads) << s.name;
    EXPECT_EQ(c.head_dim, s.head_dim) << s.name;
    EXPECT_EQ(c.tie_word_embeddings, s.tied) << s.name;
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, s.factor) << s.name;
    EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0) << s.name;
    EXPECT_EQ(c.bos_token_id, 128000) << s.name;
    EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009})) << s.name;
  }
}

}  // namespace
}  // namespace herd

namespace herd {
namespace {

// tiny-128k exists so that a tiny model can carry Meta's Llama 3 tokenizer (chat, tools).
TEST(MakeModel, Tiny128kTakesTheLlama3Tokenizer) {
  const std::string tok = std::string(HERD_TESTDATA_DIR) + "/llama3-tokenizer";
  if (!std::filesystem::exists(tok + "/tokenizer.json"))
    GTEST_SKIP() << "Llama 3 tokenizer not found under " << tok;
  testing::ScratchDir dir;
  MakeModelOptions o;
  o.shape = "tiny-128k";
  o.output = dir.path();
  o.tokenizer_dir = tok;
  o.threads = 2;
  make_model(o);
  const ModelConfig c = load_model_config(dir.path());
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(load_tokenizer(dir.path())->token_id("<|eot_id|>").value_or(-1), 128009);
  // The small shapes refuse it, and say which shape takes it.
  o.shape = "tiny";
  try {
    make_model(o);
    FAIL() << "tiny accepted a 128,256-token tokenizer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiny-128k"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace herd
