// The 46 encode cases llama.cpp checks its tokenizers against (produced by Hugging Face
// tokenizers, add_special_tokens=False), for Llama 3 (byte-level BPE) and Llama 2
// (sentencepiece-style BPE with byte fallback).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/tokenizer/testdata.h"

namespace herd {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> read_vectors(const std::string& stem) {
  std::string inp = testing::read_file(testing::testdata("tokenizer-vectors/" + stem + ".inp"));
  std::string out = testing::read_file(testing::testdata("tokenizer-vectors/" + stem + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  size_t pos = 0;
  while (true) {
    size_t j = inp.find(sep, pos);
    if (j == std::string::npos) break;
    cases.push_back({inp.substr(pos, j - pos), {}});
    pos = j + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  for (auto& c : cases) {
    if (!std::getline(lines, line)) break;
    std::istringstream nums(line);
    int32_t id;
    while (nums >> id) c.ids.push_back(id);
  }
  return cases;
}

void check_vectors(const Tokenizer& tok, const std::string& stem) {
  auto cases = read_vectors(stem);
  ASSERT_EQ(cases.size(), 46u) << stem;
  int passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    auto ids = tok.encode(cases[i].text);
    EXPECT_EQ(ids, cases[i].ids) << stem << " case " << i << ": '" << cases[i].text << "'";
    if (ids == cases[i].ids) ++passed;
    // Every case decodes back to its text (for sentencepiece, the decoder strips exactly the
    // leading space that the normalizer's prepended "▁" became).
    EXPECT_EQ(tok.decode(ids), cases[i].text) << stem << " case " << i;
  }
  EXPECT_EQ(passed, 46) << stem;
}

TEST(TokenizerVectors, Llama3Bpe) {
  if (!std::filesystem::exists(testing::testdata("tokenizer-vectors/llama3-bpe.inp")))
    GTEST_SKIP() << "testdata tokenizer-vectors absent";
  HERD_TOKENIZER_OR_SKIP(tok, "llama3-tokenizer");
  check_vectors(*tok, "llama3-bpe");
}

TEST(TokenizerVectors, Llama2Spm) {
  if (!std::filesystem::exists(testing::testdata("tokenizer-vectors/llama2-spm.inp")))
    GTEST_SKIP() << "testdata tokenizer-vectors absent";
  // The vectors were made with Meta's Llama 2 vocabulary, loaded here from its sentencepiece
  // tokenizer.model (llama2-tokenizer/ is another 32000-token vocab; see testdata README).
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer-meta");
  ASSERT_EQ(tok->token_id("\xE2\x96\x81"), 29871);
  check_vectors(*tok, "llama2-spm");
}

// Whatever the vocab, the sentencepiece-style tokenizer must give back every case's text.
TEST(TokenizerVectors, Llama2SpmCasesRoundTrip) {
  if (!std::filesystem::exists(testing::testdata("tokenizer-vectors/llama2-spm.inp")))
    GTEST_SKIP() << "testdata tokenizer-vectors absent";
  HERD_TOKENIZER_OR_SKIP(tok, "llama2-tokenizer");
  auto cases = read_vectors("llama2-spm");
  ASSERT_EQ(cases.size(), 46u);
  for (size_t i = 0; i < cases.size(); ++i) {
    auto ids = tok->encode(cases[i].text);
    EXPECT_EQ(ids.empty(), cases[i].text.empty()) << "case " << i;
    EXPECT_EQ(tok->decode(ids), cases[i].text) << "case " << i;
    // Byte-fallback ids (3..258) and control ids are the same in every Llama-2-style vocab:
    // "\n" and "\t" have no piece of their own, so they appear as <0x0A> / <0x09>.
    for (char c : cases[i].text) {
      if (c == '\n') {
        EXPECT_NE(std::find(ids.begin(), ids.end(), 13), ids.end()) << "case " << i;
      }
      if (c == '\t') {
        EXPECT_NE(std::find(ids.begin(), ids.end(), 12), ids.end()) << "case " << i;
      }
    }
  }
}

}  // namespace
}  // namespace herd
