// Recursive schemas ($ref nesting, anyOf): context-dependent token sets are cached by the top
// elements of the stack their walk consults, so one computed at a shallow nesting depth is
// reused at deeper ones. That reuse must stay exact: at every depth, and for states reached
// both before and after the shallower ones filled the cache, the mask equals brute force.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/grammar/json_schema_compiler.h"
#include "engine/grammar/token_masker.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/grammar/brute_force_mask.h"

namespace herd::grammar {
namespace {

using json = nlohmann::ordered_json;
using testing::brute_force;

// The benchmark's recursive schema: a tree of named nodes, up to 3 kids each.
const char* kTree = R"({"$defs":{"node":{"type":"object","properties":{"name":{"type":"string"},
    "value":{"anyOf":[{"type":"number"},{"type":"null"},{"enum":["a","b"]}]},
    "kids":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":3}},
    "required":["name","value","kids"],"additionalProperties":false}},"$ref":"#/$defs/node"})";

// Nested arrays through anyOf: every value is an integer, a string or a list of values.
const char* kLists = R"({"$defs":{"v":{"anyOf":[{"type":"integer"},{"type":"string"},
    {"type":"array","items":{"$ref":"#/$defs/v"}}]}},"$ref":"#/$defs/v"})";

struct Probe {
  const char* schema;
  std::string open;                 // one nesting level deeper
  std::vector<std::string> probes;  // states to check at each depth, after `depth` opens
};

std::vector<Probe> probes() {
  return {
      {kTree,
       R"({"name": "n", "value": null, "kids": [)",
       {"", "{", R"({"name":)", R"({"name": "ab)", R"({"name":"a","value":)",
        R"({"name":"a","value": 12)", R"({"name":"a","value":1.5e)", R"({"name":"a","value":"a")",
        R"({"name":"a","value":null,"kids":[])", R"({"name":"a","value":null,"kids":[]})",
        R"({"name":"a","value":null,"kids":[]}, )"}},
      {kLists, "[", {"", "1", "12", R"("x)", R"("x")", "[]", "[], ", "[[]]", "-"}},
  };
}

// The state after `depth` opens and then `probe`; nullopt for the probes that need an
// enclosing list (a trailing ", ") at depth 0.
std::optional<StackSet> state_after(const Grammar& g, const Probe& p, int depth,
                                    const std::string& probe) {
  std::string text;
  for (int d = 0; d < depth; ++d) text += p.open;
  text += probe;
  StackSet s = initial_state(g);
  if (advance_bytes(g, s, text)) return s;
  EXPECT_EQ(depth, 0) << text;
  return std::nullopt;
}

// Depths in the order given, all on one masker (so later depths meet entries the earlier
// ones cached); each probe's mask is compared with brute force, then `steps` random allowed
// tokens are taken from it, comparing again after each.
void check_depths(const std::shared_ptr<const TokenTrie>& trie, const Probe& p,
                  const std::vector<int>& depths, int steps,
                  size_t context_cache_bytes = TokenMasker::kDefaultContextCacheBytes) {
  auto g = std::make_shared<const Grammar>(compile_json_schema(json::parse(p.schema), "rf"));
  TokenMasker masker(g, trie, context_cache_bytes);
  std::mt19937 rng(5);
  for (int depth : depths) {
    for (const std::string& probe : p.probes) {
      std::optional<StackSet> start = state_after(*g, p, depth, probe);
      if (!start) continue;
      StackSet state = std::move(*start);
      for (int step = 0; step <= steps && can_continue(state); ++step) {
        TokenBitset mask;
        masker.fill_mask(state, trie->vocab_size(), mask);
        ASSERT_EQ(mask, brute_force(*g, *trie, state))
            << "depth " << depth << " after '" << probe << "' step " << step;
        std::vector<int32_t> allowed;
        for (int32_t id = 0; id < trie->vocab_size(); ++id)
          if (bitset_test(mask, id)) allowed.push_back(id);
        if (allowed.empty()) break;
        ASSERT_TRUE(advance_bytes(*g, state, trie->bytes(allowed[rng() % allowed.size()])));
      }
    }
  }
}

TEST(RecursiveMask, MatchesBruteForceAtEveryDepthOnSmallVocabulary) {
  auto trie = std::make_shared<const TokenTrie>(testing::small_vocab(), std::vector<bool>{});
  for (const Probe& p : probes()) {
    check_depths(trie, p, {0, 1, 2, 3, 5, 7, 9}, 8);
    check_depths(trie, p, {9, 4, 1, 0}, 8);  // deep first: shallow states meet deep entries
  }
}

// A context cache too small for even two entries starts over at almost every miss: masks
// stay exact.
TEST(RecursiveMask, ContextCacheStartingOverStaysExact) {
  auto trie = std::make_shared<const TokenTrie>(testing::small_vocab(), std::vector<bool>{});
  for (const Probe& p : probes()) check_depths(trie, p, {1, 3, 7, 2}, 6, /*bytes=*/100);
}

// The point of the cache: the same relative states one nesting level deeper walk no
// context-dependent tokens again (the whole-state cache misses, the context cache hits).
TEST(RecursiveMask, DeeperNestingReusesContextMasks) {
  auto trie = std::make_shared<const TokenTrie>(testing::small_vocab(), std::vector<bool>{});
  for (const Probe& p : probes()) {
    auto g = std::make_shared<const Grammar>(compile_json_schema(json::parse(p.schema), "rf"));
    TokenMasker masker(g, trie);
    auto fill_all = [&](int depth) {
      for (const std::string& probe : p.probes) {
        TokenBitset mask;
        masker.fill_mask(*state_after(*g, p, depth, probe), trie->vocab_size(), mask);
      }
    };
    fill_all(3);
    fill_all(4);  // may still consult a frame that depth 3 did not have
    const size_t walks = masker.num_context_walks();
    const size_t states = masker.num_cached_states();
    EXPECT_GT(masker.num_cached_contexts(), 0u);
    fill_all(7);
    EXPECT_EQ(masker.num_context_walks(), walks) << p.schema;
    EXPECT_GT(masker.num_cached_states(), states);  // new whole states: not what served them
  }
}

// The real Llama 3 vocabulary (128k tokens, many spanning several brackets and quotes).
TEST(RecursiveMask, MatchesBruteForceAtEveryDepthOnLlama3Vocabulary) {
  const std::string dir = std::string(HERD_TESTDATA_DIR) + "/llama3-tokenizer";
  if (!std::filesystem::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << "needs ../shared/testdata/llama3-tokenizer (absent)";
  const std::unique_ptr<Tokenizer> tok = load_tokenizer(dir);
  auto trie = std::make_shared<const TokenTrie>(TokenTrie::from_tokenizer(*tok));
  for (const Probe& p : probes()) {
    check_depths(trie, p, {1, 3, 7}, 1);
    check_depths(trie, p, {6, 2}, 0);
  }
}

}  // namespace
}  // namespace herd::grammar
