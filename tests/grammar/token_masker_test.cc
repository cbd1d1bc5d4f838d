// Token masks must be exact: for every parse state met on random walks through a grammar, the
// precomputed-and-cached mask equals the brute-force one (each token's bytes run through the
// matcher from the full state). The vocabularies have tokens that span several grammar
// elements and tokens that split UTF-8 sequences, as byte-level BPE vocabularies do.
#include "engine/grammar/token_masker.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/grammar/json_schema_compiler.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/grammar/brute_force_mask.h"

namespace herd::grammar {
namespace {

using json = nlohmann::ordered_json;

using testing::brute_force;
using testing::small_vocab;

std::vector<json> schemas() {
  return {
      json::parse(R"({"type":"object","properties":{"name":{"type":"string"},
          "age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false})"),
      json::parse(R"({"type":"array","items":{"anyOf":[{"type":"number"},{"enum":["red","green"]},
          {"type":"object","properties":{"a":{"type":"array","items":{"type":"boolean"}}},
          "required":["a"],"additionalProperties":false}]},"minItems":1})"),
      json::parse(R"({"type":"object","properties":{"s":{"type":"string"},"n":{"type":"null"}},
          "required":["n"]})"),
  };
}

// Random walk: repeatedly pick an allowed token (from the mask) and advance; compare the
// mask with brute force at every step.
void check_walks(const Grammar& grammar, std::shared_ptr<const TokenTrie> trie, int walks,
                 int steps, uint32_t seed) {
  auto g = std::make_shared<const Grammar>(grammar);
  TokenMasker masker(g, trie);
  std::mt19937 rng(seed);
  int states = 0;
  for (int w = 0; w < walks; ++w) {
    StackSet state = initial_state(*g);
    for (int step = 0; step < steps && can_continue(state); ++step) {
      TokenBitset mask;
      masker.fill_mask(state, trie->vocab_size(), mask);
      ASSERT_EQ(mask, brute_force(*g, *trie, state)) << "walk " << w << " step " << step;
      ++states;
      std::vector<int32_t> allowed;
      for (int32_t id = 0; id < trie->vocab_size(); ++id)
        if (bitset_test(mask, id)) allowed.push_back(id);
      if (allowed.empty()) break;
      const int32_t id = allowed[rng() % allowed.size()];
      ASSERT_TRUE(advance_bytes(*g, state, trie->bytes(id)));
    }
  }
  EXPECT_GE(states, walks);
}

TEST(TokenMasker, MatchesBruteForceOnSmallVocabulary) {
  auto trie = std::make_shared<const TokenTrie>(small_vocab(), std::vector<bool>{});
  uint32_t seed = 1;
  for (const json& s : schemas())
    check_walks(compile_json_schema(s, "response_format"), trie, 20, 60, seed++);
  check_walks(any_json_object_grammar(), trie, 20, 60, seed++);
}

TEST(TokenMasker, CachesPositionsAndStates) {
  auto trie = std::make_shared<const TokenTrie>(small_vocab(), std::vector<bool>{});
  auto g = std::make_shared<const Grammar>(compile_json_schema(schemas()[0], "response_format"));
  TokenMasker masker(g, trie);
  StackSet state = initial_state(*g);
  ASSERT_TRUE(advance_bytes(*g, state, "{\"name\":\"ab"));
  TokenBitset first, second;
  masker.fill_mask(state, trie->vocab_size(), first);
  const size_t positions = masker.num_position_masks();
  EXPECT_GE(positions, 1u);
  ASSERT_TRUE(advance_bytes(*g, state, "cd"));  // same state inside the string
  masker.fill_mask(state, trie->vocab_size(), second);
  EXPECT_EQ(first, second);
  EXPECT_EQ(masker.num_position_masks(), positions);
  EXPECT_EQ(masker.num_cached_states(), 1u);
}

TEST(TokenMasker, ExcludedTokensAndLargerModelVocab) {
  std::vector<std::string> v = {"{", "}", "<|eot|>", "\"", "a"};
  auto trie = std::make_shared<const TokenTrie>(v, std::vector<bool>{false, false, true});
  auto g = std::make_shared<const Grammar>(any_json_object_grammar());
  TokenMasker masker(g, trie);
  TokenBitset mask;
  masker.fill_mask(initial_state(*g), 100, mask);  // the model's vocab may be padded
  ASSERT_EQ(mask.size(), bitset_words(100));
  for (int32_t id = 0; id < 100; ++id) EXPECT_EQ(bitset_test(mask, id), id == 0) << id;
}

// The real Llama 3 vocabulary: 128k tokens, many spanning JSON punctuation and quotes.
TEST(TokenMasker, MatchesBruteForceOnLlama3Vocabulary) {
  const std::string dir = std::string(HERD_TESTDATA_DIR) + "/llama3-tokenizer";
  if (!std::filesystem::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << "needs ../shared/testdata/llama3-tokenizer (absent)";
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(dir);
  auto trie = std::make_shared<const TokenTrie>(TokenTrie::from_tokenizer(*tok));
  EXPECT_GT(trie->num_nodes(), size_t(tok->vocab_size()));
  check_walks(compile_json_schema(schemas()[0], "response_format"), trie, 1, 10, 7);
  check_walks(compile_json_schema(schemas()[1], "response_format"), trie, 1, 10, 8);
}

}  // namespace
}  // namespace herd::grammar
