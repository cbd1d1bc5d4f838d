// Allowed-token masks for a grammar over a tokenizer's vocabulary, computed the way XGrammar
// and llguidance do: for a stack whose top is position p, a token is
//   - accepted for sure when its bytes are matched without leaving p's rule,
//   - refused for sure when they fail inside p's rule,
//   - context-dependent when p's rule completes before the token's last byte (the bytes after
//     it are matched by whatever called the rule).
// The first two sets depend only on p and are computed once per position (one walk of the
// token trie, refused prefixes skipping their subtrees); at run time only the usually few
// context-dependent tokens are checked against the real stack. Whole masks are also cached
// per parse state, which repeats a lot (every byte inside a string leaves the same state).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/grammar/grammar.h"
#include "engine/grammar/matcher.h"
#include "engine/grammar/token_trie.h"

namespace herd::grammar {

// A bitset over token ids: bit (id % 64) of word (id / 64).
using TokenBitset = std::vector<uint64_t>;
inline size_t bitset_words(int32_t vocab) { return (size_t(vocab) + 63) / 64; }
inline bool bitset_test(std::span<const uint64_t> b, int32_t id) {
  return (b[size_t(id) >> 6] >> (id & 63)) & 1;
}
inline void bitset_set(TokenBitset& b, int32_t id) {
  b[size_t(id) >> 6] |= uint64_t(1) << (id & 63);
}

class TokenMasker {
 public:
  TokenMasker(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> trie);

  const Grammar& grammar() const { return *grammar_; }
  const TokenTrie& trie() const { return *trie_; }

  // The tokens (ids below trie().vocab_size()) that keep `state` a viable prefix, into
  // `mask` (resized to bitset_words(vocab) and overwritten; vocab >= the trie's vocab). End of
  // sequence is the caller's business (is_complete(state)). Thread-safe.
  void fill_mask(const StackSet& state, int32_t vocab, TokenBitset& mask);

  // Statistics (for tests and benchmarks).
  size_t num_position_masks() const;
  size_t num_cached_states() const;

 private:
  struct PositionMask {
    std::vector<int32_t> accepted_ids;  // when sparse
    TokenBitset accepted_bits;          // when dense (else empty)
    std::vector<int32_t> uncertain;     // context-dependent tokens
    // When there are many (e.g. after an optional space, every token that starts with a
    // space), the uncertain tokens as a trie of their own: checking them walks shared prefixes
    // once instead of each token's bytes.
    std::unique_ptr<TokenTrie> uncertain_trie;
  };
  const PositionMask& position_mask(uint32_t position);
  PositionMask compute_position_mask(uint32_t position) const;
  bool token_fits(const Stack& stack, int32_t id) const;
  // Sets the bits of the tokens of `trie` whose bytes `start` accepts.
  void walk(const TokenTrie& trie, const StackSet& start, TokenBitset& mask) const;

  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const TokenTrie> trie_;
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, std::unique_ptr<PositionMask>> positions_;
  // Whole masks by parse state, least recently used first out.
  using StateKey = std::vector<uint32_t>;
  struct KeyHash {
    size_t operator()(const StateKey& k) const;
  };
  std::list<std::pair<StateKey, TokenBitset>> lru_;
  std::unordered_map<StateKey, std::list<std::pair<StateKey, TokenBitset>>::iterator, KeyHash>
      states_;
  size_t max_states_ = 0;
};

}  // namespace herd::grammar
