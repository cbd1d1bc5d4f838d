// make_byte_level_tokenizer_json: deterministic, loadable, sized as asked.
#include "engine/tokenizer/builtin_tokenizer.h"

#include <gtest/gtest.h>

#include "engine/common/error.h"
#include "tests/tokenizer/testdata.h"

namespace herd {
namespace {

TEST(BuiltinTokenizer, DeterministicAndSized) {
  for (int v : {512, 1000, 4096, 32000}) {
    auto a = make_byte_level_tokenizer_json(v);
    auto b = make_byte_level_tokenizer_json(v);
    EXPECT_EQ(a, b) << v;
    EXPECT_EQ(a["model"]["vocab"].size() + a["added_tokens"].size(), static_cast<size_t>(v));
    EXPECT_GE(a["model"]["merges"].size(), static_cast<size_t>(v - 512));
  }
}

TEST(BuiltinTokenizer, SmallerVocabIsAPrefixOfLarger) {
  auto small = make_byte_level_tokenizer_json(700)["model"]["merges"];
  auto large = make_byte_level_tokenizer_json(3000)["model"]["merges"];
  for (size_t i = 0; i < small.size(); ++i) ASSERT_EQ(small[i], large[i]) << i;
}

TEST(BuiltinTokenizer, RejectsTinyVocab) {
  EXPECT_THROW(make_byte_level_tokenizer_json(511), InvalidArgument);
  EXPECT_THROW(make_byte_level_tokenizer_config_json(100), InvalidArgument);
}

TEST(BuiltinTokenizer, LoaderRoundTrip) {
  auto tok = testing::load_builtin_tokenizer(4096);
  EXPECT_EQ(tok->vocab_size(), 4096);
  EXPECT_FALSE(tok->adds_bos());
  const std::string text = "Once upon a time, there was a little girl named Lily. She was happy.";
  auto ids = tok->encode(text);
  EXPECT_EQ(tok->decode(ids), text);
  // Common words are single tokens, so English compresses well below one token per byte.
  EXPECT_LT(ids.size() * 2, text.size());
  EXPECT_EQ(tok->encode(" the").size(), 1u);
  // The token for " the" is written with GPT-2's byte-level space.
  EXPECT_EQ(tok->token_id("\xC4\xA0the"), tok->encode(" the")[0]);
}

TEST(BuiltinTokenizer, EosIds) {
  auto ids = builtin_eos_token_ids(1024);
  EXPECT_EQ(ids, (std::vector<int32_t>{768 + 1, 768 + 8, 768 + 9}));
  auto tok = testing::load_builtin_tokenizer(1024);
  EXPECT_EQ(tok->token_bytes(ids[0]), "<|end_of_text|>");
  EXPECT_EQ(tok->token_bytes(ids[1]), "<|eom_id|>");
  EXPECT_EQ(tok->token_bytes(ids[2]), "<|eot_id|>");
  auto base_cfg = make_byte_level_tokenizer_config_json(1024, /*instruct=*/false);
  EXPECT_EQ(base_cfg["eos_token"], "<|end_of_text|>");
}

}  // namespace
}  // namespace herd
