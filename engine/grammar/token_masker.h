// Allowed-token masks for a grammar over a tokenizer's vocabulary, computed the way XGrammar
// and llguidance do: for a stack whose top is position p, a token is
//   - accepted for sure when its bytes are matched without leaving p's rule,
//   - refused for sure when they fail inside p's rule,
//   - context-dependent when p's rule completes before the token's last byte (the bytes after
//     it are matched by whatever called the rule).
// The first two sets depend only on p and are computed once per position (one walk of the
// token trie, refused prefixes skipping their subtrees). The context-dependent tokens a stack
// accepts depend only on the top elements their walk pops down to, usually a few whatever the
// stack's depth: they are cached by exactly those top elements, so a recursive grammar's mask
// computed at nesting depth 3 serves depth 7 too (the walk is run on the stack's top k elements
// above a sentinel that refuses every byte; a walk that uncovers the sentinel is retried with
// more of the stack). Whole masks are also cached per parse state, which repeats a lot (every
// byte inside a string leaves the same state).
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
  // Per grammar, context-dependent sets are cached up to this many bytes (mostly short id
  // lists); past it that cache starts over (a grammar whose stacks keep meeting new contexts,
  // e.g. ever-deeper closing brackets).
  static constexpr size_t kDefaultContextCacheBytes = size_t(32) << 20;

  TokenMasker(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const TokenTrie> trie,
              size_t context_cache_bytes = kDefaultContextCacheBytes);

  const Grammar& grammar() const { return *grammar_; }
  const TokenTrie& trie() const { return *trie_; }

  // The tokens (ids below trie().vocab_size()) that keep `state` a viable prefix, into
  // `mask` (resized to bitset_words(vocab) and overwritten; vocab >= the trie's vocab). End of
  // sequence is the caller's business (is_complete(state)). Thread-safe.
  void fill_mask(const StackSet& state, int32_t vocab, TokenBitset& mask);

  // Statistics (for tests and benchmarks).
  size_t num_position_masks() const;
  size_t num_cached_states() const;
  // Context-dependent sets cached (one per top-of-stack context met) and computed so far
  // (walks of context-dependent tokens, retries included; a cache hit adds none).
  size_t num_cached_contexts() const;
  size_t num_context_walks() const;

 private:
  // A set of token ids, as a list when sparse and a bitset when dense (a bitset ORs faster).
  struct TokenSet {
    std::vector<int32_t> ids;  // when sparse
    TokenBitset bits;          // when dense (else empty)
    static TokenSet of(std::vector<int32_t> ids, int32_t vocab);
    void add_to(TokenBitset& mask) const;
    size_t bytes() const { return ids.size() * sizeof(int32_t) + bits.size() * sizeof(uint64_t); }
  };
  struct PositionMask {
    TokenSet accepted;
    std::vector<int32_t> uncertain;  // context-dependent tokens
    // When there are many (e.g. after an optional space, every token that starts with a
    // space), the uncertain tokens as a trie of their own: checking them walks shared prefixes
    // once instead of each token's bytes.
    std::unique_ptr<TokenTrie> uncertain_trie;
  };
  const PositionMask& position_mask(uint32_t position);
  PositionMask compute_position_mask(uint32_t position) const;
  // The context-dependent tokens of `pm` that `stack` (size >= 2) accepts, from the cache or
  // computed and cached.
  const TokenSet& context_mask(const Stack& stack, const PositionMask& pm);
  // The tokens of `pm.uncertain` that `start` accepts, into `out`; false when a walk uncovered
  // the sentinel (the answer needs more of the stack than `start` holds).
  bool walk_uncertain(const PositionMask& pm, const Stack& start, std::vector<int32_t>& out) const;

  // grammar_ plus one element, sentinel_: a byte set that matches nothing, put under the top
  // elements of a stack to stand for the rest of it.
  Grammar walk_grammar_;
  uint32_t sentinel_ = 0;

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
  // Context-dependent accepted tokens by the stack walked: [sentinel_, top k elements...], or a
  // whole stack when the walk needed all of it (a key never holds both, so they cannot clash).
  std::unordered_map<StateKey, TokenSet, KeyHash> contexts_;
  // For each top position, the k of its sentinel keys (the lengths to try on lookup).
  std::unordered_map<uint32_t, std::vector<uint32_t>> context_lengths_;
  size_t context_bytes_ = 0;
  size_t max_context_bytes_ = 0;
  size_t context_walks_ = 0;
};

}  // namespace herd::grammar
