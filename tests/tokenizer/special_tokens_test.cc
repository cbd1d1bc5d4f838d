// Special tokens: never produced from plain text unless allowed; Llama 3.1 names for the ids
// older files call reserved; BOS/EOS resolution.
#include <gtest/gtest.h>

#include "tests/tokenizer/testdata.h"

namespace herd {
namespace {

TEST(SpecialTokens, Llama3PlainTextNeverProducesSpecials) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama3-tokenizer");
  const std::string text = "<|begin_of_text|>hi<|eot_id|><|start_header_id|>user";
  auto plain = tok->encode(text);
  for (int32_t id : plain) EXPECT_FALSE(tok->is_special(id)) << id;
  EXPECT_EQ(tok->decode(plain), text);

  auto allowed = tok->encode(text, /*allow_special=*/true);
  std::vector<int32_t> expect = {128000};
  auto hi = tok->encode("hi");
  expect.insert(expect.end(), hi.begin(), hi.end());
  expect.push_back(128009);
  expect.push_back(128006);
  auto user = tok->encode("user");
  expect.insert(expect.end(), user.begin(), user.end());
  EXPECT_EQ(allowed, expect);
  EXPECT_EQ(tok->decode(allowed), text);
}

TEST(SpecialTokens, Llama31NamesForReservedIds) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama3-tokenizer");
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->token_id("<|eom_id|>"), 128008);
  EXPECT_EQ(tok->token_id("<|python_tag|>"), 128010);
  EXPECT_EQ(tok->token_id("<|finetune_right_pad_id|>"), 128004);
  EXPECT_EQ(tok->token_bytes(128008), "<|eom_id|>");
  EXPECT_TRUE(tok->is_special(128010));
  EXPECT_EQ(tok->encode("<|python_tag|>{}<|eom_id|>", true).front(), 128010);
  EXPECT_EQ(tok->encode("<|python_tag|>{}<|eom_id|>", true).back(), 128008);
  EXPECT_EQ(tok->token_id("<|eot_id|>"), 128009);
  EXPECT_FALSE(tok->is_special(0));
  EXPECT_FALSE(tok->adds_bos());
}

TEST(SpecialTokens, Llama3BosEosFromConfig) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama3-tokenizer");
  EXPECT_EQ(tok->bos_id(), 128000);
  // tokenizer_config.json of this (instruct) tokenizer names <|eot_id|> as EOS.
  EXPECT_EQ(tok->eos_id(), 128009);
}

TEST(SpecialTokens, Llama2) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer");
  EXPECT_FALSE(tok->adds_bos());  // encode() never puts BOS first; callers prepend it
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->vocab_size(), 32000);
  auto plain = tok->encode("</s>");
  for (int32_t id : plain) EXPECT_FALSE(tok->is_special(id));
  auto allowed = tok->encode("Hi</s>", true);
  EXPECT_EQ(allowed.back(), 2);
  // HF decodes BOS as text, then the leading-space strip does not apply to the next piece.
  std::vector<int32_t> with_bos = {1};
  auto hello = tok->encode("Hello");
  with_bos.insert(with_bos.end(), hello.begin(), hello.end());
  EXPECT_EQ(tok->decode(with_bos), "<s> Hello");
  EXPECT_EQ(tok->decode(hello), "Hello");
}

TEST(SpecialTokens, BuiltinLayout) {
  auto tok = testing::load_builtin_tokenizer(600);
  const int base = 600 - 256;
  EXPECT_EQ(tok->vocab_size(), 600);
  EXPECT_EQ(tok->bos_id(), base);
  EXPECT_EQ(tok->eos_id(), base + 9);  // config: instruct EOS <|eot_id|>
  EXPECT_EQ(tok->token_id("<|end_of_text|>"), base + 1);
  EXPECT_EQ(tok->token_id("<|finetune_right_pad_id|>"), base + 4);
  EXPECT_EQ(tok->token_id("<|start_header_id|>"), base + 6);
  EXPECT_EQ(tok->token_id("<|end_header_id|>"), base + 7);
  EXPECT_EQ(tok->token_id("<|eom_id|>"), base + 8);
  EXPECT_EQ(tok->token_id("<|python_tag|>"), base + 10);
  EXPECT_EQ(tok->token_id("<|reserved_special_token_3|>"), base + 11);
  EXPECT_EQ(tok->token_id("<|reserved_special_token_247|>"), base + 255);
  for (int k = 0; k < 256; ++k) EXPECT_TRUE(tok->is_special(base + k));
  for (int id = 0; id < base; ++id) ASSERT_FALSE(tok->is_special(id));
  EXPECT_EQ(tok->encode("<|eot_id|>", true), std::vector<int32_t>{base + 9});
  for (int32_t id : tok->encode("<|eot_id|>")) EXPECT_LT(id, base);
}

}  // namespace
}  // namespace herd
