// convert-llama2c on the real stories260K checkpoint: the config, the tensors (wq/wk permuted
// from interleaved-pair to rotate-half RoPE, everything else verbatim), the tokenizer.json in
// the Llama-2 format, and errors for truncated inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "engine/common/error.h"
#include "engine/model/config.h"
#include "engine/model/convert_llama2c.h"
#include "engine/model/weights.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/model/checkpoint_test_util.h"

namespace herd {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

const std::string kDir = std::string(HERD_TESTDATA_DIR) + "/stories260K";
const std::string kCheckpoint = kDir + "/stories260K.bin";
const std::string kTokenizer = kDir + "/tok512.bin";

class ConvertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kCheckpoint) || !std::filesystem::exists(kTokenizer))
      GTEST_SKIP() << "stories260K test data not found under " << kDir;
    raw_ = testing::read_file(kCheckpoint);
  }
  // Float k of the llama2.c file (after the 7-int header).
  const float* raw_floats() const { return reinterpret_cast<const float*>(raw_.data() + 28); }

  testing::ScratchDir out_;
  std::string raw_;
};

// dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512, seq_len 512 (README).
constexpr int64_t kDim = 64, kHidden = 172, kLayers = 5, kHeads = 8, kKvHeads = 4, kVocab = 512;
constexpr int64_t kHead = kDim / kHeads, kKvDim = kKvHeads * kHead;

TEST_F(ConvertTest, ConfigAndTensors) {
  Llama2cHeader h = convert_llama2c(kCheckpoint, kTokenizer, out_.path());
  EXPECT_TRUE(h.shared_classifier);
  ModelConfig c = load_model_config(out_.path());
  EXPECT_EQ(c.vocab_size, kVocab);
  EXPECT_EQ(c.hidden_size, kDim);
  EXPECT_EQ(c.intermediate_size, kHidden);
  EXPECT_EQ(c.num_hidden_layers, kLayers);
  EXPECT_EQ(c.num_attention_heads, kHeads);
  EXPECT_EQ(c.num_key_value_heads, kKvHeads);
  EXPECT_EQ(c.head_dim, kHead);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.rope_scaling.llama3);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.torch_dtype, DType::kF32);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2}));

  LlamaWeights w = load_llama_weights(out_.path(), c);
  EXPECT_EQ(w.dtype, DType::kF32);
  EXPECT_EQ(w.lm_head.data, w.embed_tokens.data);
  // Offsets of the llama2.c arrays (README order).
  const float* f = raw_floats();
  const int64_t tok = 0, rms_att = tok + kVocab * kDim, wq = rms_att + kLayers * kDim,
                wk = wq + kLayers * kDim * kDim, wv = wk + kLayers * kKvDim * kDim,
                wo = wv + kLayers * kKvDim * kDim, rms_ffn = wo + kLayers * kDim * kDim,
                w1 = rms_ffn + kLayers * kDim, w2 = w1 + kLayers * kHidden * kDim,
                w3 = w2 + kLayers * kDim * kHidden, rms_final = w3 + kLayers * kHidden * kDim;
  auto same = [](const Tensor& t, const float* src) {
    return std::memcmp(t.data, src, t.bytes()) == 0;
  };
  EXPECT_TRUE(same(w.embed_tokens, f + tok));
  EXPECT_TRUE(same(w.norm, f + rms_final));
  for (int64_t l = 0; l < kLayers; ++l) {
    const LlamaLayerWeights& L = w.layers[size_t(l)];
    EXPECT_TRUE(same(L.input_layernorm, f + rms_att + l * kDim));
    EXPECT_TRUE(same(L.v_proj, f + wv + l * kKvDim * kDim));
    EXPECT_TRUE(same(L.o_proj, f + wo + l * kDim * kDim));
    EXPECT_TRUE(same(L.post_attention_layernorm, f + rms_ffn + l * kDim));
    EXPECT_TRUE(same(L.gate_proj, f + w1 + l * kHidden * kDim));
    EXPECT_TRUE(same(L.down_proj, f + w2 + l * kDim * kHidden));
    EXPECT_TRUE(same(L.up_proj, f + w3 + l * kHidden * kDim));
    // Un-permuting: within each head, HF row i (< head/2) is llama2.c row 2i and HF row
    // i + head/2 is llama2.c row 2i + 1.
    for (int64_t head = 0; head < kHeads; ++head)
      for (int64_t i = 0; i < kHead / 2; ++i)
        for (int64_t j = 0; j < 2; ++j) {
          const float* hf = L.q_proj.as<float>() + (head * kHead + j * kHead / 2 + i) * kDim;
          const float* orig = f + wq + l * kDim * kDim + (head * kHead + 2 * i + j) * kDim;
          ASSERT_EQ(std::memcmp(hf, orig, kDim * sizeof(float)), 0) << l << " " << head << " " << i;
        }
    for (int64_t r = 0; r < kKvDim; ++r) {
      const float* hf = L.k_proj.as<float>() + r * kDim;
      const float* orig = f + wk + l * kKvDim * kDim + interleaved_row_for(r, kHead) * kDim;
      ASSERT_EQ(std::memcmp(hf, orig, kDim * sizeof(float)), 0) << l << " " << r;
    }
  }
}

// The point of the permutation: interleaved-pair RoPE on llama2.c's q/k gives the same
// attention scores as rotate-half RoPE on the converted q/k.
TEST_F(ConvertTest, PermutationPreservesRopeScores) {
  convert_llama2c(kCheckpoint, kTokenizer, out_.path());
  ModelConfig c = load_model_config(out_.path());
  LlamaWeights w = load_llama_weights(out_.path(), c);
  const float* f = raw_floats();
  const float* wq = f + kVocab * kDim + kLayers * kDim;  // layer 0
  const float* wk = wq + kLayers * kDim * kDim;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> x(kDim);
  for (float& v : x) v = nd(rng);
  auto matvec = [&](const float* m, int64_t rows) {
    std::vector<double> y(size_t(rows), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < kDim; ++k) y[size_t(r)] += double(m[r * kDim + k]) * x[size_t(k)];
    return y;
  };
  const std::vector<float> inv = rope_inv_freq(c);
  auto rope_interleaved = [&](std::vector<double> v, int pos) {
    for (size_t h0 = 0; h0 < v.size(); h0 += kHead)
      for (int64_t i = 0; i < kHead / 2; ++i) {
        double a = pos * double(inv[size_t(i)]), x0 = v[h0 + 2 * i], x1 = v[h0 + 2 * i + 1];
        v[h0 + 2 * i] = x0 * std::cos(a) - x1 * std::sin(a);
        v[h0 + 2 * i + 1] = x0 * std::sin(a) + x1 * std::cos(a);
      }
    return v;
  };
  auto rope_half = [&](std::vector<double> v, int pos) {
    for (size_t h0 = 0; h0 < v.size(); h0 += kHead)
      for (int64_t i = 0; i < kHead / 2; ++i) {
        double a = pos * double(inv[size_t(i)]), x0 = v[h0 + i], x1 = v[h0 + i + kHead / 2];
        v[h0 + i] = x0 * std::cos(a) - x1 * std::sin(a);
        v[h0 + i + kHead / 2] = x0 * std::sin(a) + x1 * std::cos(a);
      }
    return v;
  };
  auto q_old = rope_interleaved(matvec(wq, kDim), 7),
       k_old = rope_interleaved(matvec(wk, kKvDim), 3);
  auto q_new = rope_half(matvec(w.layers[0].q_proj.as<float>(), kDim), 7);
  auto k_new = rope_half(matvec(w.layers[0].k_proj.as<float>(), kKvDim), 3);
  for (int64_t head = 0; head < kHeads; ++head) {
    const int64_t kv = head / (kHeads / kKvHeads);
    double s_old = 0, s_new = 0;
    for (int64_t d = 0; d < kHead; ++d) {
      s_old += q_old[size_t(head * kHead + d)] * k_old[size_t(kv * kHead + d)];
      s_new += q_new[size_t(head * kHead + d)] * k_new[size_t(kv * kHead + d)];
    }
    EXPECT_NEAR(s_old, s_new, 1e-9 * (1 + std::fabs(s_old))) << head;
  }
}

TEST_F(ConvertTest, TokenizerJsonInLlama2Format) {
  convert_llama2c(kCheckpoint, kTokenizer, out_.path());
  auto t = testing::read_json(out_ / "tokenizer.json");
  EXPECT_EQ(t["model"]["type"], "BPE");
  EXPECT_EQ(t["model"]["byte_fallback"], true);
  EXPECT_EQ(t["model"]["vocab"].size(), 512u);
  EXPECT_EQ(t["model"]["vocab"]["<unk>"], 0);
  EXPECT_EQ(t["model"]["vocab"]["<s>"], 1);
  EXPECT_EQ(t["model"]["vocab"]["</s>"], 2);
  EXPECT_EQ(t["model"]["vocab"]["<0x41>"], 0x41 + 3);
  EXPECT_EQ(t["model"]["vocab"]["\xe2\x96\x81t"], 259);  // " t" stored with a space
  // Highest-scoring merge first: "▁t" (score 0) is the first multi-character piece.
  ASSERT_GT(t["model"]["merges"].size(), 100u);
  EXPECT_EQ(t["model"]["merges"][0], "\xe2\x96\x81 t");
  EXPECT_EQ(t["model"]["merges"][1], "h e");
  auto tc = testing::read_json(out_ / "tokenizer_config.json");
  EXPECT_EQ(tc["bos_token"], "<s>");
  // Same pipeline JSON as the real Llama 2 tokenizer.json, where that file is available.
  const std::string ref_path = std::string(HERD_TESTDATA_DIR) + "/llama2-tokenizer/tokenizer.json";
  if (std::filesystem::exists(ref_path)) {
    auto ref = testing::read_json(ref_path);
    EXPECT_EQ(t["normalizer"], ref["normalizer"]);
    EXPECT_EQ(t["decoder"], ref["decoder"]);
    EXPECT_EQ(t["post_processor"], ref["post_processor"]);
    EXPECT_EQ(t["pre_tokenizer"], ref["pre_tokenizer"]);
    EXPECT_EQ(t["added_tokens"], ref["added_tokens"]);
    for (const char* k : {"type", "unk_token", "fuse_unk", "byte_fallback"})
      EXPECT_EQ(t["model"][k], ref["model"][k]) << k;
  }
}

// The converted tokenizer, read by herd's own loader, decodes llama2.c's greedy ids to the
// exact story llama2.c prints, and encodes its opening the way llama2.c did.
TEST_F(ConvertTest, ConvertedTokenizerDecodesTheExpectedStory) {
  const std::string ids_path = kDir + "/expected_greedy_ids_n200.derived.txt";
  if (!std::filesystem::exists(ids_path) || !std::filesystem::exists(kDir + "/expected.txt"))
    GTEST_SKIP() << "expected outputs not found under " << kDir;
  convert_llama2c(kCheckpoint, kTokenizer, out_.path());
  auto tok = load_tokenizer(out_.path());
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  std::istringstream in(testing::read_file(ids_path));
  std::vector<int32_t> ids;
  for (int32_t id; in >> id;) ids.push_back(id);
  ASSERT_EQ(ids.size(), 200u);
  EXPECT_EQ(tok->decode(ids), testing::read_file(kDir + "/expected.txt"));
  std::vector<int32_t> enc = tok->encode("Once upon a time");
  if (!enc.empty() && enc[0] == 1) enc.erase(enc.begin());  // BOS, if the encoder adds it
  EXPECT_EQ(enc, std::vector<int32_t>(ids.begin(), ids.begin() + 4));
}

TEST(Convert, MergesFollowScoresThenIds) {
  // Pieces: bytes-like singles, then "ab" (score -1) and "abc" (score -0.5, splits "ab"+"c"
  // and "a"+"bc"), "bc" (score -2).
  std::vector<Llama2cPiece> p = {{"<unk>", 0}, {"\n<s>\n", 0}, {"\n</s>\n", 0},
                                 {"a", -10},   {"b", -10},     {"c", -10},
                                 {"ab", -1},   {"abc", -0.5f}, {"bc", -2}};
  auto j = llama2c_tokenizer_json(p);
  std::vector<std::string> merges = j["model"]["merges"];
  EXPECT_EQ(merges, (std::vector<std::string>{"a bc", "ab c", "a b", "b c"}));
  EXPECT_EQ(j["model"]["vocab"]["<s>"], 1);
}

TEST_F(ConvertTest, TruncatedCheckpoint) {
  testing::write_file(out_ / "short.bin", raw_.substr(0, raw_.size() / 3));
  try {
    convert_llama2c(out_ / "short.bin", kTokenizer, out_ / "model");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(out_ / "short.bin"), HasSubstr("truncated")));
  }
  testing::write_file(out_ / "short.bin", raw_.substr(0, 10));
  EXPECT_THROW(convert_llama2c(out_ / "short.bin", kTokenizer, out_ / "model"), Error);
}

TEST_F(ConvertTest, CorruptHeader) {
  std::string bad = raw_;
  int32_t heads = 7;  // does not divide dim 64
  std::memcpy(bad.data() + 12, &heads, 4);
  testing::write_file(out_ / "bad.bin", bad);
  try {
    convert_llama2c(out_ / "bad.bin", kTokenizer, out_ / "model");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(out_ / "bad.bin"), HasSubstr("n_heads 7")));
  }
}

TEST_F(ConvertTest, TruncatedTokenizer) {
  std::string tok = testing::read_file(kTokenizer);
  testing::write_file(out_ / "tok.bin", tok.substr(0, tok.size() - 3));
  try {
    convert_llama2c(kCheckpoint, out_ / "tok.bin", out_ / "model");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(out_ / "tok.bin"), HasSubstr("truncated")));
  }
  EXPECT_THROW(convert_llama2c(kCheckpoint, out_ / "missing.bin", out_ / "model"), Error);
}

}  // namespace
}  // namespace herd
