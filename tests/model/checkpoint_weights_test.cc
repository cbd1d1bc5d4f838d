// load_llama_weights on make-model checkpoints, intact and broken in every way the loader
// must catch: missing / extra / misshapen / wrongly typed tensors, truncated and corrupt files,
// a config field missing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>

#include "engine/common/error.h"
#include "engine/model/make_model.h"
#include "engine/model/safetensors.h"
#include "engine/model/safetensors_writer.h"
#include "engine/model/weights.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class WeightsTest : public ::testing::Test {
 protected:
  void make(const std::string& shape, DType dtype = DType::kBF16,
            uint64_t shard_bytes = 4ull << 30) {
    MakeModelOptions o;
    o.shape = shape;
    o.output = dir_.path();
    o.dtype = dtype;
    o.seed = 7;
    o.max_shard_bytes = shard_bytes;
    o.write_tokenizer = false;
    make_model(o);
  }
  std::string safetensors() const { return dir_ / "model.safetensors"; }

  // Rewrites model.safetensors after `edit` changed the list of tensors (copies of the good
  // checkpoint's tensors, so the data outlives the old mapping).
  void rewrite(const std::function<void(std::vector<TensorSpec>&)>& edit) {
    auto ck = SafetensorsCheckpoint::open_dir(dir_.path());
    keep_.clear();
    std::vector<TensorSpec> specs;
    for (const auto& [name, t] : ck.tensors()) {
      keep_.emplace_back(static_cast<const char*>(t.data),
                         static_cast<const char*>(t.data) + t.bytes);
      specs.push_back(tensor_from_memory(name, t.dtype, t.shape, keep_.back().data()));
    }
    edit(specs);
    write_safetensors_file(safetensors(), specs);
  }

  std::string load_error() {
    try {
      load_llama_weights(dir_.path(), load_model_config(dir_.path()));
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "checkpoint loaded but should not have";
    return "";
  }

  testing::ScratchDir dir_;
  std::deque<std::vector<char>> keep_;
};

TEST_F(WeightsTest, LoadsTinyUntied) {
  make("tiny");
  ModelConfig c = load_model_config(dir_.path());
  LlamaWeights w = load_llama_weights(dir_.path(), c);
  EXPECT_EQ(w.dtype, DType::kBF16);
  ASSERT_EQ(int64_t(w.layers.size()), c.num_hidden_layers);
  EXPECT_EQ(w.embed_tokens.rows, c.vocab_size);
  EXPECT_EQ(w.embed_tokens.cols, c.hidden_size);
  const LlamaLayerWeights& l = w.layers[3];
  EXPECT_EQ(l.q_proj.rows, c.num_attention_heads * c.head_dim);
  EXPECT_EQ(l.k_proj.rows, c.num_key_value_heads * c.head_dim);
  EXPECT_EQ(l.k_proj.cols, c.hidden_size);
  EXPECT_EQ(l.o_proj.cols, c.num_attention_heads * c.head_dim);
  EXPECT_EQ(l.down_proj.rows, c.hidden_size);
  EXPECT_EQ(l.down_proj.cols, c.intermediate_size);
  EXPECT_EQ(l.input_layernorm.rows, 1);
  EXPECT_EQ(l.input_layernorm.cols, c.hidden_size);
  EXPECT_EQ(w.lm_head.rows, c.vocab_size);
  EXPECT_NE(w.lm_head.data, w.embed_tokens.data);
  // Norm weights are 1 + small noise; projections are centred with std ~ 1/sqrt(in).
  float norm0 = bf16_to_f32(w.norm.as<uint16_t>()[0]);
  EXPECT_GT(norm0, 0.75f);
  EXPECT_LT(norm0, 1.25f);
  double sq = 0;
  for (int64_t i = 0; i < l.q_proj.numel(); ++i) {
    float v = bf16_to_f32(l.q_proj.as<uint16_t>()[i]);
    sq += double(v) * v;
  }
  EXPECT_NEAR(std::sqrt(sq / double(l.q_proj.numel())), 1.0 / 8.0, 0.01);
}

TEST_F(WeightsTest, TiedHeadIsTheEmbedding) {
  make("tiny-tied", DType::kF32);
  ModelConfig c = load_model_config(dir_.path());
  LlamaWeights w = load_llama_weights(dir_.path(), c);
  EXPECT_EQ(w.dtype, DType::kF32);
  EXPECT_EQ(w.lm_head.data, w.embed_tokens.data);
  EXPECT_EQ(SafetensorsCheckpoint::open_dir(dir_.path()).find("lm_head.weight"), nullptr);
}

TEST_F(WeightsTest, ShardedCheckpointLoadsTheSameValues) {
  make("tiny");
  auto single = load_llama_weights(dir_.path(), load_model_config(dir_.path()));
  testing::ScratchDir other;
  MakeModelOptions o;
  o.output = other.path();
  o.seed = 7;
  o.max_shard_bytes = 60000;
  o.write_tokenizer = false;
  make_model(o);
  EXPECT_TRUE(std::filesystem::exists(other / "model.safetensors.index.json"));
  auto sharded = load_llama_weights(other.path(), load_model_config(other.path()));
  auto same = [](const Tensor& a, const Tensor& b) {
    return a.bytes() == b.bytes() && std::memcmp(a.data, b.data, a.bytes()) == 0;
  };
  EXPECT_TRUE(same(single.embed_tokens, sharded.embed_tokens));
  EXPECT_TRUE(same(single.layers[2].gate_proj, sharded.layers[2].gate_proj));
  EXPECT_TRUE(same(single.lm_head, sharded.lm_head));
}

TEST_F(WeightsTest, WeightsOutliveTheirCheckpointObject) {
  make("tiny");
  LlamaWeights w = load_llama_weights(dir_.path(), load_model_config(dir_.path()));
  LlamaWeights copy = w;
  w = LlamaWeights();
  // Reads through the views must still hit the mapping (ASan would flag it otherwise).
  EXPECT_GT(bf16_to_f32(copy.layers[0].input_layernorm.as<uint16_t>()[0]), 0.5f);
}

TEST_F(WeightsTest, MissingTensor) {
  make("tiny");
  rewrite([](std::vector<TensorSpec>& s) {
    std::erase_if(
        s, [](const TensorSpec& t) { return t.name == "model.layers.2.mlp.up_proj.weight"; });
  });
  EXPECT_THAT(load_error(), AllOf(HasSubstr(dir_.path()), HasSubstr("missing tensor"),
                                  HasSubstr("'model.layers.2.mlp.up_proj.weight'")));
}

TEST_F(WeightsTest, MissingLmHeadWhenUntied) {
  make("tiny");
  rewrite([](std::vector<TensorSpec>& s) {
    std::erase_if(s, [](const TensorSpec& t) { return t.name == "lm_head.weight"; });
  });
  EXPECT_THAT(load_error(), HasSubstr("'lm_head.weight'"));
}

TEST_F(WeightsTest, ExtraTensor) {
  make("tiny");
  static const float bias[64] = {};
  rewrite([](std::vector<TensorSpec>& s) {
    s.push_back(
        tensor_from_memory("model.layers.0.self_attn.q_proj.bias", DType::kBF16, {64}, bias));
  });
  EXPECT_THAT(load_error(), AllOf(HasSubstr(safetensors()), HasSubstr("unexpected tensor"),
                                  HasSubstr("'model.layers.0.self_attn.q_proj.bias'")));
}

TEST_F(WeightsTest, ExtraLayer) {
  make("tiny");
  std::vector<uint16_t> norm(64, f32_to_bf16(1.0f));
  rewrite([&](std::vector<TensorSpec>& s) {
    s.push_back(tensor_from_memory("model.layers.4.input_layernorm.weight", DType::kBF16, {64},
                                   norm.data()));
  });
  EXPECT_THAT(load_error(), HasSubstr("'model.layers.4.input_layernorm.weight'"));
}

TEST_F(WeightsTest, MisshapenTensor) {
  make("tiny");
  rewrite([](std::vector<TensorSpec>& s) {
    for (TensorSpec& t : s)
      if (t.name == "model.layers.1.self_attn.k_proj.weight") t.shape = {64, 32};  // transposed
  });
  EXPECT_THAT(load_error(),
              AllOf(HasSubstr(safetensors()), HasSubstr("'model.layers.1.self_attn.k_proj.weight'"),
                    HasSubstr("[64, 32]"), HasSubstr("[32, 64]")));
}

TEST_F(WeightsTest, WrongDtype) {
  make("tiny");
  std::vector<float> norm(64, 1.0f);
  rewrite([&](std::vector<TensorSpec>& s) {
    for (TensorSpec& t : s)
      if (t.name == "model.layers.3.post_attention_layernorm.weight")
        t = tensor_from_memory(t.name, DType::kF32, {64}, norm.data());
  });
  EXPECT_THAT(load_error(), AllOf(HasSubstr("'model.layers.3.post_attention_layernorm.weight'"),
                                  HasSubstr("F32"), HasSubstr("BF16"), HasSubstr("one dtype")));
}

TEST_F(WeightsTest, TruncatedFile) {
  make("tiny");
  std::string bytes = testing::read_file(safetensors());
  testing::write_file(safetensors(), bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(load_error(), AllOf(HasSubstr(safetensors()), HasSubstr("truncated")));
}

TEST_F(WeightsTest, CorruptHeader) {
  make("tiny");
  std::string bytes = testing::read_file(safetensors());
  bytes[20] = '\x01';  // a control character inside the JSON header
  testing::write_file(safetensors(), bytes);
  EXPECT_THAT(load_error(), AllOf(HasSubstr(safetensors()), HasSubstr("invalid JSON")));
}

TEST_F(WeightsTest, ConfigFieldMissing) {
  make("tiny");
  auto c = testing::read_json(dir_ / "config.json");
  c.erase("intermediate_size");
  testing::write_json(dir_ / "config.json", c);
  EXPECT_THAT(load_error(), AllOf(HasSubstr("config.json"), HasSubstr("'intermediate_size'")));
}

TEST_F(WeightsTest, ConfigDisagreesWithTensors) {
  make("tiny");
  auto c = testing::read_json(dir_ / "config.json");
  c["intermediate_size"] = 256;
  testing::write_json(dir_ / "config.json", c);
  EXPECT_THAT(load_error(), AllOf(HasSubstr("'model.layers.0.mlp.gate_proj.weight'"),
                                  HasSubstr("[172, 64]"), HasSubstr("[256, 64]")));
}

}  // namespace
}  // namespace herd
