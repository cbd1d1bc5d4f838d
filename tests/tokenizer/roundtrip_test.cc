// decode(encode(x)) == x across scripts, emoji, combining marks, random bytes, and invalid
// UTF-8 (defined behaviour: byte-level tokenizers encode each invalid byte as its own byte
// token and decode() gives the raw bytes back; sentencepiece-style ones use <0xHH> byte
// fallback tokens). Also checks that both BPE merge strategies agree.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/tokenizer/bpe_merges.h"
#include "engine/tokenizer/utf8.h"
#include "tests/tokenizer/testdata.h"

namespace herd {
namespace {

const std::vector<std::string>& unicode_samples() {
  static const std::vector<std::string> s = {
      "",
      "Hello, world!",
      "我想在apple工作1314151天～",                        // CJK
      "日本語のテキストと한국어 텍스트",                   // Japanese + Korean
      "🚀 😶‍🌫️ 🦙🦙 ✅ 👩🏽‍💻",  // emoji, ZWJ sequences, skin tones
      "e\xCC\x81 a\xCC\x8A\xCC\x81 n\xCC\x83o Z\xCD\x91\xCD\x97\xCD\x9B",  // combining marks
      "Cửa Việt — нещо на Български — مرحبا بالعالم — שלום",
      "  leading and trailing spaces  \n\n\ttabs\r\nCRLF",
      "3 33 333 3333 3.14 1,000,000",
      "I've been 'told he's there, 'RE you sure? We'Ve a'lL",
  };
  return s;
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

void check_round_trip(const Tokenizer& tok, const std::string& text) {
  auto ids = tok.encode(text);
  for (int32_t id : ids) EXPECT_FALSE(tok.is_special(id)) << "special token from plain text";
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(TokenizerRoundTrip, Llama3UnicodeSamples) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama3-tokenizer");
  for (const auto& s : unicode_samples()) check_round_trip(*tok, s);
}

TEST(TokenizerRoundTrip, Llama2UnicodeSamples) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer");
  for (const auto& s : unicode_samples()) check_round_trip(*tok, s);
}

TEST(TokenizerRoundTrip, BuiltinUnicodeSamples) {
  auto tok = testing::load_builtin_tokenizer(1024);
  for (const auto& s : unicode_samples()) check_round_trip(*tok, s);
}

TEST(TokenizerRoundTrip, RandomByteStringsByteLevel) {
  auto builtin = testing::load_builtin_tokenizer(2048);
  auto llama3 = testing::load_testdata_tokenizer("llama3-tokenizer");
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    std::string s = random_bytes(rng, rng() % 64);
    check_round_trip(*builtin, s);
    if (llama3) check_round_trip(*llama3, s);
  }
}

TEST(TokenizerRoundTrip, RandomValidUtf8SentencePiece) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer");
  std::mt19937 rng(99);
  const uint32_t ranges[][2] = {{0x20, 0x7E},     {0xA0, 0x2FF},      {0x400, 0x4FF},
                                {0x4E00, 0x9FFF}, {0x1F300, 0x1F6FF}, {0x300, 0x36F}};
  for (int i = 0; i < 200; ++i) {
    std::string s;
    int n = static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) {
      const auto& r = ranges[rng() % std::size(ranges)];
      utf8::append(s, r[0] + rng() % (r[1] - r[0] + 1));
    }
    check_round_trip(*tok, s);
  }
}

// Invalid UTF-8: each invalid byte becomes the token of that byte; valid text around it is
// tokenized as usual.
TEST(TokenizerRoundTrip, InvalidUtf8ByteLevelUsesByteTokens) {
  auto tok = testing::load_builtin_tokenizer(1024);
  // Byte token ids are the byte values in the built-in layout.
  EXPECT_EQ(tok->encode("\xFF"), std::vector<int32_t>{0xFF});
  EXPECT_EQ(tok->encode("\xC3"), std::vector<int32_t>{0xC3});  // truncated sequence
  auto ids = tok->encode("ab\x80\xFE cd");
  std::string joined;
  for (int32_t id : ids) joined += tok->token_bytes(id);
  EXPECT_EQ(joined, "ab\x80\xFE cd");
  EXPECT_NE(std::find(ids.begin(), ids.end(), 0x80), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), 0xFE), ids.end());
  // Valid text keeps its usual tokens on both sides of the bad byte.
  auto ab = tok->encode("ab"), cd = tok->encode(" cd");
  std::vector<int32_t> expect = ab;
  expect.push_back(0x80);
  expect.push_back(0xFE);
  expect.insert(expect.end(), cd.begin(), cd.end());
  EXPECT_EQ(ids, expect);
}

TEST(TokenizerRoundTrip, InvalidUtf8SentencePieceUsesByteFallback) {
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer");
  auto ids = tok->encode("a\xFF");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(tok->token_bytes(ids.back()), "\xFF");
  EXPECT_EQ(tok->token_id("<0xFF>"), ids.back());
  EXPECT_EQ(tok->decode(ids), "a\xFF");
}

TEST(BpeMerges, ScanAndHeapAgree) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    // Random merge table over a small alphabet, so that many pairs and ties occur.
    BpeMerges m;
    int32_t next_id = 8;
    for (int r = 0; r < 40; ++r) {
      int32_t a = static_cast<int32_t>(rng() % next_id), b = static_cast<int32_t>(rng() % next_id);
      m.add(a, b, r, next_id++);
    }
    for (int w = 0; w < 40; ++w) {
      std::vector<int32_t> word(1 + rng() % 60);
      for (auto& x : word) x = static_cast<int32_t>(rng() % 8);
      auto a = word, b = word;
      m.apply_scan(a);
      m.apply_heap(b);
      EXPECT_EQ(a, b);
    }
  }
}

TEST(BpeMerges, LowestRankFirstLeftmostOnTies) {
  BpeMerges m;
  m.add(0, 0, 0, 5);  // "a a" -> 5
  m.add(5, 0, 1, 6);
  std::vector<int32_t> w = {0, 0, 0};
  m.apply(w);
  EXPECT_EQ(w, (std::vector<int32_t>{6}));  // (a a) a, then (aa a)
  BpeMerges m2;
  m2.add(1, 2, 1, 7);
  m2.add(0, 1, 0, 8);  // lower rank wins although it is not leftmost-first in the table
  std::vector<int32_t> w2 = {0, 1, 2};
  m2.apply(w2);
  EXPECT_EQ(w2, (std::vector<int32_t>{8, 2}));
}

}  // namespace
}  // namespace herd
