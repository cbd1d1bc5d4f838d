// load_model_config / rope_inv_freq: good Llama 3.x configs parse to the right numbers; every
// kind of bad config fails with a herd::Error naming the file and the field.
#include "engine/model/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "engine/common/error.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::ordered_json;

// Llama 3.1 8B Instruct's config.json.
json llama31_8b() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 128256})");
}

class ConfigTest : public ::testing::Test {
 protected:
  std::string config_path() const { return dir_ / "config.json"; }
  ModelConfig load(const json& config) {
    testing::write_json(config_path(), config);
    return load_model_config(dir_.path());
  }
  // Loads `config` expecting failure; returns the message.
  std::string error_of(const json& config) {
    testing::write_json(config_path(), config);
    try {
      load_model_config(dir_.path());
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "config loaded but should not have: " << config.dump();
    return "";
  }
  testing::ScratchDir dir_;
};

TEST_F(ConfigTest, ParsesLlama31_8B) {
  ModelConfig c = load(llama31_8b());
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_TRUE(c.rope_scaling.llama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.torch_dtype, DType::kBF16);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
}

TEST_F(ConfigTest, Llama32TiedWithExplicitHeadDimAndOldRopeTypeKey) {
  json j = llama31_8b();
  j["hidden_size"] = 3072;
  j["num_attention_heads"] = 24;
  j["head_dim"] = 128;
  j["tie_word_embeddings"] = true;
  j["eos_token_id"] = 128001;
  j["torch_dtype"] = "float16";
  j["rope_scaling"].erase("rope_type");
  j["rope_scaling"]["type"] = "llama3";
  j["rope_scaling"]["factor"] = 32.0;
  ModelConfig c = load(j);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.rope_scaling.llama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.torch_dtype, DType::kF16);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001}));
}

TEST_F(ConfigTest, Llama3WithoutScalingAndDefaults) {
  json j = llama31_8b();
  j.erase("rope_scaling");
  j.erase("num_key_value_heads");
  j.erase("torch_dtype");
  ModelConfig c = load(j);
  EXPECT_FALSE(c.rope_scaling.llama3);
  EXPECT_EQ(c.num_key_value_heads, c.num_attention_heads);
  j["rope_scaling"] = nullptr;  // transformers writes null for "no scaling"
  EXPECT_FALSE(load(j).rope_scaling.llama3);
}

TEST_F(ConfigTest, GenerationConfigAddsEosIdsAndSamplingDefaults) {
  json j = llama31_8b();
  j["eos_token_id"] = 128001;
  testing::write_json(dir_ / "generation_config.json",
                      json::parse(R"({"bos_token_id": 128000, "do_sample": true,
                      "eos_token_id": [128001, 128008, 128009], "temperature": 0.6,
                      "top_p": 0.9})"));
  ModelConfig c = load(j);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_DOUBLE_EQ(c.default_temperature, 0.6);
  EXPECT_DOUBLE_EQ(c.default_top_p, 0.9);
}

TEST_F(ConfigTest, MissingConfigFile) {
  try {
    load_model_config(dir_.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("config.json"), HasSubstr("cannot open")));
  }
}

TEST_F(ConfigTest, BadJson) {
  testing::write_file(config_path(), "{\"vocab_size\": 12,");
  try {
    load_model_config(dir_.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(config_path()), HasSubstr("invalid JSON")));
  }
}

TEST_F(ConfigTest, BadGenerationConfigJson) {
  testing::write_json(config_path(), llama31_8b());
  testing::write_file(dir_ / "generation_config.json", "[1, 2");
  try {
    load_model_config(dir_.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("generation_config.json"), HasSubstr("invalid JSON")));
  }
}

TEST_F(ConfigTest, MissingFieldNamesFileAndField) {
  for (const char* field : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "architectures"}) {
    json j = llama31_8b();
    j.erase(field);
    EXPECT_THAT(error_of(j),
                AllOf(HasSubstr(config_path()), HasSubstr(std::string("'") + field + "': missing")))
        << field;
  }
  json j = llama31_8b();
  j["rope_scaling"].erase("low_freq_factor");
  EXPECT_THAT(error_of(j), HasSubstr("'rope_scaling.low_freq_factor': missing"));
}

TEST_F(ConfigTest, WronglyTypedFields) {
  json j = llama31_8b();
  j["hidden_size"] = "4096";
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'hidden_size'"), HasSubstr("expected an integer")));
  j = llama31_8b();
  j["tie_word_embeddings"] = 1;
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'tie_word_embeddings'"), HasSubstr("true/false")));
  j = llama31_8b();
  j["eos_token_id"] = json::array({128001, "x"});
  EXPECT_THAT(error_of(j), HasSubstr("'eos_token_id'"));
  j = llama31_8b();
  j["rope_theta"] = "big";
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'rope_theta'"), HasSubstr("expected a number")));
  j = llama31_8b();
  j["num_hidden_layers"] = 0;
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'num_hidden_layers'"), HasSubstr("positive")));
}

TEST_F(ConfigTest, UnsupportedValues) {
  json j = llama31_8b();
  j["rope_scaling"]["rope_type"] = "yarn";
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'rope_scaling.rope_type'"),
                                 HasSubstr("unsupported rope type 'yarn'")));
  j = llama31_8b();
  j["architectures"] = {"MistralForCausalLM"};
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'architectures'"), HasSubstr("LlamaForCausalLM")));
  j = llama31_8b();
  j["torch_dtype"] = "float8_e4m3fn";
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'torch_dtype'"), HasSubstr("float8_e4m3fn")));
  j = llama31_8b();
  j["hidden_act"] = "gelu";
  EXPECT_THAT(error_of(j), HasSubstr("'hidden_act'"));
  j = llama31_8b();
  j["attention_bias"] = true;
  EXPECT_THAT(error_of(j), HasSubstr("'attention_bias'"));
  j = llama31_8b();
  j["eos_token_id"] = 128256;
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'eos_token_id'"), HasSubstr("outside the vocabulary")));
}

TEST_F(ConfigTest, InconsistentHeads) {
  json j = llama31_8b();
  j["hidden_size"] = 4097;
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'hidden_size'"), HasSubstr("not divisible")));
  j = llama31_8b();
  j["num_key_value_heads"] = 5;
  EXPECT_THAT(error_of(j), AllOf(HasSubstr("'num_key_value_heads'"), HasSubstr("does not divide")));
}

TEST_F(ConfigTest, RopeInvFreqPlain) {
  ModelConfig c;
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  std::vector<float> f = rope_inv_freq(c);
  ASSERT_EQ(f.size(), 64u);
  for (size_t i = 0; i < f.size(); ++i)
    EXPECT_NEAR(f[i], std::pow(500000.0, -2.0 * double(i) / 128.0), 1e-6 * std::fabs(f[i]) + 1e-12);
}

// Llama 3.1 scaling: wavelengths shorter than original_ctx/high_freq_factor keep their
// frequency, longer than original_ctx/low_freq_factor are divided by factor, and the band in
// between interpolates smoothly (so the result is monotone in i and continuous at the edges).
TEST_F(ConfigTest, RopeInvFreqLlama3Bands) {
  ModelConfig c = load(llama31_8b());
  std::vector<float> f = rope_inv_freq(c);
  ASSERT_EQ(f.size(), 64u);
  int high = 0, low = 0, medium = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const double base = std::pow(500000.0, -2.0 * double(i) / 128.0);
    const double wavelen = 2 * M_PI / base;
    if (wavelen < 8192.0 / 4.0) {
      EXPECT_NEAR(f[i], base, 1e-6 * base) << i;
      ++high;
    } else if (wavelen > 8192.0) {
      EXPECT_NEAR(f[i], base / 8.0, 1e-6 * base) << i;
      ++low;
    } else {
      const double s = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      EXPECT_NEAR(f[i], (1 - s) * base / 8.0 + s * base, 1e-5 * base) << i;
      EXPECT_LT(f[i], base);
      EXPECT_GT(f[i], base / 8.0);
      ++medium;
    }
    if (i > 0) {
      EXPECT_LT(f[i], f[i - 1]);
    }
  }
  EXPECT_GT(high, 0);
  EXPECT_GT(low, 0);
  EXPECT_GT(medium, 0);
}

}  // namespace
}  // namespace herd
