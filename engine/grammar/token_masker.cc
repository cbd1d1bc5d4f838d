#include "engine/grammar/token_masker.h"

#include <algorithm>

namespace herd::grammar {
namespace {

constexpr size_t kUncertainTrieMin = 64;  // fewer uncertain tokens are checked one by one
constexpr size_t kStateCacheBytes = size_t(8) << 20;  // per grammar: 512 masks of 128k tokens

// A state as a flat key: each stack's length then its elements.
std::vector<uint32_t> state_key(const StackSet& state) {
  std::vector<uint32_t> k;
  for (const Stack& s : state) {
    k.push_back(uint32_t(s.size()));
    k.insert(k.end(), s.begin(), s.end());
  }
  return k;
}

}  // namespace

size_t TokenMasker::KeyHash::operator()(const StateKey& k) const {
  uint64_t h = 1469598103934665603ull;
  for (uint32_t v : k) h = (h ^ v) * 1099511628211ull;
  return size_t(h);
}

TokenMasker::TokenMasker(std::shared_ptr<const Grammar> grammar,
                         std::shared_ptr<const TokenTrie> trie)
    : grammar_(std::move(grammar)), trie_(std::move(trie)) {
  const size_t bytes = std::max<size_t>(1, bitset_words(trie_->vocab_size()) * 8);
  max_states_ = std::max<size_t>(16, kStateCacheBytes / bytes);
}

size_t TokenMasker::num_position_masks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return positions_.size();
}

size_t TokenMasker::num_cached_states() const {
  std::lock_guard<std::mutex> lock(mu_);
  return states_.size();
}

// One walk of the trie from the state {[position]}: per depth, the set after the node's
// prefix and whether the rule had completed before it (later bytes then belong to the caller).
TokenMasker::PositionMask TokenMasker::compute_position_mask(uint32_t position) const {
  const Grammar& g = *grammar_;
  const TokenTrie& t = *trie_;
  const auto& nodes = t.nodes();
  const auto& ids = t.token_ids();
  PositionMask pm;
  std::vector<int32_t> accepted;
  std::vector<StackSet> sets(1, position_state(g, position));
  std::vector<uint8_t> ended(1, 0);  // ended[d]: the rule completed within the first d bytes
  const uint32_t end = nodes[0].subtree_end;
  for (uint32_t i = 1; i < end;) {
    const TokenTrie::Node& n = nodes[i];
    const size_t d = n.depth;
    if (sets.size() <= d) sets.resize(d + 1), ended.resize(d + 1);
    const uint8_t was_ended = ended[d - 1] || is_complete(sets[d - 1]);
    sets[d] = advance(g, sets[d - 1], n.byte);
    ended[d] = was_ended;
    if (sets[d].empty()) {
      if (was_ended) {
        auto [b, e] = t.tokens_under(i);
        pm.uncertain.insert(pm.uncertain.end(), ids.begin() + b, ids.begin() + e);
      }
      i = n.subtree_end;
      continue;
    }
    auto [b, e] = t.tokens_at(i);
    accepted.insert(accepted.end(), ids.begin() + b, ids.begin() + e);
    ++i;
  }
  std::sort(pm.uncertain.begin(), pm.uncertain.end());
  if (pm.uncertain.size() >= kUncertainTrieMin) {
    std::vector<std::string> bytes(static_cast<size_t>(t.vocab_size()));
    for (int32_t id : pm.uncertain) bytes[size_t(id)] = t.bytes(id);
    pm.uncertain_trie = std::make_unique<TokenTrie>(std::move(bytes), std::vector<bool>{});
  }
  const int32_t vocab = t.vocab_size();
  if (accepted.size() * 64 > size_t(vocab)) {  // dense: a bitset ORs faster than a list
    pm.accepted_bits.assign(bitset_words(vocab), 0);
    for (int32_t id : accepted) bitset_set(pm.accepted_bits, id);
  } else {
    pm.accepted_ids = std::move(accepted);
  }
  return pm;
}

const TokenMasker::PositionMask& TokenMasker::position_mask(uint32_t position) {
  // mu_ is held by the caller.
  auto it = positions_.find(position);
  if (it != positions_.end()) return *it->second;
  auto pm = std::make_unique<PositionMask>(compute_position_mask(position));
  return *positions_.emplace(position, std::move(pm)).first->second;
}

void TokenMasker::walk(const TokenTrie& t, const StackSet& start, TokenBitset& mask) const {
  const auto& nodes = t.nodes();
  const auto& ids = t.token_ids();
  std::vector<StackSet> sets(1, start);
  const uint32_t end = nodes[0].subtree_end;
  for (uint32_t i = 1; i < end;) {
    const TokenTrie::Node& n = nodes[i];
    const size_t d = n.depth;
    if (sets.size() <= d) sets.resize(d + 1);
    sets[d] = advance(*grammar_, sets[d - 1], n.byte);
    if (sets[d].empty()) {
      i = n.subtree_end;
      continue;
    }
    auto [b, e] = t.tokens_at(i);
    for (uint32_t k = b; k < e; ++k) bitset_set(mask, ids[k]);
    ++i;
  }
}

bool TokenMasker::token_fits(const Stack& stack, int32_t id) const {
  StackSet s{stack};
  return advance_bytes(*grammar_, s, trie_->bytes(id));
}

void TokenMasker::fill_mask(const StackSet& state, int32_t vocab, TokenBitset& mask) {
  const size_t words = bitset_words(vocab);
  StateKey key = state_key(state);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = states_.find(key); it != states_.end()) {
    lru_.splice(lru_.end(), lru_, it->second);
    mask.assign(words, 0);
    const TokenBitset& m = it->second->second;
    std::copy(m.begin(), m.begin() + std::min(words, m.size()), mask.begin());
    return;
  }
  mask.assign(words, 0);
  for (const Stack& s : state) {
    if (s.empty()) continue;
    const PositionMask& pm = position_mask(s.back());
    if (!pm.accepted_bits.empty()) {
      for (size_t w = 0; w < pm.accepted_bits.size(); ++w) mask[w] |= pm.accepted_bits[w];
    } else {
      for (int32_t id : pm.accepted_ids) bitset_set(mask, id);
    }
    // With nothing below the top, completing the rule completes the root: no byte may follow.
    if (s.size() == 1) continue;
    if (pm.uncertain_trie) {
      walk(*pm.uncertain_trie, StackSet{s}, mask);
      continue;
    }
    for (int32_t id : pm.uncertain)
      if (!bitset_test(mask, id) && token_fits(s, id)) bitset_set(mask, id);
  }
  lru_.emplace_back(std::move(key), mask);
  states_[lru_.back().first] = std::prev(lru_.end());
  if (states_.size() > max_states_) {
    states_.erase(lru_.front().first);
    lru_.pop_front();
  }
}

}  // namespace herd::grammar
