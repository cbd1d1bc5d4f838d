// The interface the engine uses: compile a response format once (cached by its hash), then
// per sample a SequenceConstraint that fills the allowed-token mask before each sampling step
// and advances with every accepted token.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>

#include "engine/api/types.h"
#include "engine/grammar/matcher.h"
#include "engine/grammar/token_masker.h"
#include "engine/grammar/token_trie.h"

namespace herd::grammar {

// One sample's position in its grammar.
class SequenceConstraint {
 public:
  explicit SequenceConstraint(std::shared_ptr<TokenMasker> masker);
  // The tokens allowed next, as a bitset over `vocab` ids: what keeps the output a viable
  // prefix, plus `end_ids` exactly when the output is a complete value (so the end is forced
  // once nothing else may follow, and never offered before).
  void fill_mask(int32_t vocab, std::span<const int32_t> end_ids, TokenBitset& mask) const;
  // Advances by the token's bytes; false (state unchanged) when the grammar refuses them.
  // End ids are not passed here.
  bool accept(int32_t token);
  bool complete() const { return is_complete(state_); }

 private:
  std::shared_ptr<TokenMasker> masker_;
  StackSet state_;
};

// Compiled response formats by hash of (type, schema text), least recently used evicted.
// Thread-safe. Compiling throws herd::InvalidArgument("response_format") on a bad schema.
class ConstraintCache {
 public:
  explicit ConstraintCache(std::shared_ptr<const TokenTrie> trie, size_t capacity = 32);
  // Null for ResponseFormat::Type::kText.
  std::shared_ptr<TokenMasker> get(const ResponseFormat& format);
  size_t size() const;

 private:
  std::shared_ptr<const TokenTrie> trie_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::list<std::pair<std::string, std::shared_ptr<TokenMasker>>> lru_;
  std::unordered_map<std::string, decltype(lru_)::iterator> by_key_;
};

}  // namespace herd::grammar
