// IncrementalDetokenizer: the chunks concatenate to the full decode, every chunk is valid
// UTF-8 (even for arbitrary id sequences), and skip_special drops special tokens.
#include <gtest/gtest.h>

#include <random>

#include "engine/tokenizer/utf8.h"
#include "tests/tokenizer/testdata.h"

namespace herd {
namespace {

std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  IncrementalDetokenizer d(tok, skip_special);
  std::string all;
  for (int32_t id : ids) {
    std::string chunk = d.push(id);
    EXPECT_TRUE(utf8::is_valid(chunk)) << "chunk after id " << id;
    all += chunk;
  }
  std::string tail = d.flush();
  EXPECT_TRUE(utf8::is_valid(tail));
  return all + tail;
}

const char* const kTexts[] = {
    "Hello world, this is a streamed answer.",
    "我想在apple工作1314151天～ 日本語",
    "🚀 😶‍🌫️ 🦙🦙 ✅ e\xCC\x81\xCC\x81",
    " leading space\n\nand new lines\t",
};

void check_equals_full_decode(const Tokenizer& tok) {
  for (const char* t : kTexts) {
    auto ids = tok.encode(t);
    EXPECT_EQ(stream(tok, ids, false), tok.decode(ids)) << t;
    EXPECT_EQ(stream(tok, ids, false), t);
  }
}

TEST(IncrementalDetokenizer, Llama3EqualsFullDecode) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama3-tokenizer");
  check_equals_full_decode(*tok);
}

TEST(IncrementalDetokenizer, Llama2EqualsFullDecode) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer");
  check_equals_full_decode(*tok);
  // BOS first: decoded as text, and the next piece keeps its space (as full decode does).
  std::vector<int32_t> ids = {tok->bos_id()};
  auto hello = tok->encode("Hello there");
  ids.insert(ids.end(), hello.begin(), hello.end());
  EXPECT_EQ(stream(*tok, ids, false), tok->decode(ids));
  EXPECT_EQ(stream(*tok, ids, true), "Hello there");
}

TEST(IncrementalDetokenizer, BuiltinBytesSplitAcrossTokens) {
  // The 512 vocab has few merges, so multi-byte characters arrive one byte per token.
  auto tok = testing::load_builtin_tokenizer(512);
  check_equals_full_decode(*tok);
  IncrementalDetokenizer d(*tok);
  // "é" = C3 A9: nothing until the second byte arrives.
  EXPECT_EQ(d.push(0xC3), "");
  EXPECT_EQ(d.push(0xA9), "\xC3\xA9");
  // A lone lead byte followed by ASCII: replaced once it is known to be broken.
  EXPECT_EQ(d.push(0xE4), "");
  EXPECT_EQ(d.push('a'),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(d.push(0xF0), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
}

TEST(IncrementalDetokenizer, SkipSpecial) {
  auto tok = testing::load_builtin_tokenizer(1024);
  auto ids = tok->encode("<|start_header_id|>assistant<|end_header_id|>\n\nHi!<|eot_id|>", true);
  std::vector<int32_t> plain;
  for (int32_t id : ids)
    if (!tok->is_special(id)) plain.push_back(id);
  ASSERT_LT(plain.size(), ids.size());
  EXPECT_EQ(stream(*tok, ids, true), tok->decode(plain));
  EXPECT_EQ(stream(*tok, ids, true), "assistant\n\nHi!");
  EXPECT_EQ(stream(*tok, ids, false), tok->decode(ids));
}

TEST(IncrementalDetokenizer, RandomIdsAlwaysValidUtf8) {
  auto builtin = testing::load_builtin_tokenizer(1024);
  auto llama3 = testing::load_testdata_tokenizer("llama3-tokenizer");
  auto llama2 = testing::load_testdata_tokenizer("llama2-tokenizer");
  std::mt19937 rng(5);
  for (const Tokenizer* tok :
       std::initializer_list<const Tokenizer*>{builtin.get(), llama3.get(), llama2.get()}) {
    if (!tok) continue;
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<int32_t> ids(rng() % 40);
      for (auto& id : ids) {
        // Bias toward byte tokens so that broken sequences are common.
        id = rng() % 2 ? static_cast<int32_t>(rng() % 260)
                       : static_cast<int32_t>(rng() % tok->vocab_size());
      }
      std::string got = stream(*tok, ids, false);
      EXPECT_EQ(got, utf8::lossy(tok->decode(ids)));
    }
  }
}

TEST(Utf8, LossyAndDecidedPrefix) {
  EXPECT_EQ(utf8::lossy("a\x80z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(utf8::lossy("\xE4\xB8"), "\xEF\xBF\xBD");  // one maximal subpart
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(utf8::lossy("\xC3\xA9"), "\xC3\xA9");
  EXPECT_EQ(utf8::decided_prefix("ab\xE4\xB8"), 2u);
  EXPECT_EQ(utf8::decided_prefix("ab\xE4\xB8\xAD"), 5u);
  EXPECT_EQ(utf8::decided_prefix("ab\xFF"), 3u);
  EXPECT_EQ(utf8::decided_prefix("\xF0\x9F\x9A"), 0u);
  EXPECT_EQ(utf8::decided_prefix("\xE4"
                                 "a"),
            2u);
  EXPECT_TRUE(utf8::is_valid("日本"));
  EXPECT_FALSE(utf8::is_valid("\xC0\xAF"));  // overlong
}

}  // namespace
}  // namespace herd
