#include "engine/grammar/token_masker.h"

#include <algorithm>
#include <cstddef>

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

TokenMasker::TokenSet TokenMasker::TokenSet::of(std::vector<int32_t> ids, int32_t vocab) {
  TokenSet s;
  if (ids.size() * 64 > size_t(vocab)) {
    s.bits.assign(bitset_words(vocab), 0);
    for (int32_t id : ids) bitset_set(s.bits, id);
  } else {
    s.ids = std::move(ids);
  }
  return s;
}

void TokenMasker::TokenSet::add_to(TokenBitset& mask) const {
  for (size_t w = 0; w < bits.size(); ++w) mask[w] |= bits[w];
  for (int32_t id : ids) bitset_set(mask, id);
}

TokenMasker::TokenMasker(std::shared_ptr<const Grammar> grammar,
                         std::shared_ptr<const TokenTrie> trie, size_t context_cache_bytes)
    : walk_grammar_(*grammar),
      grammar_(std::move(grammar)),
      trie_(std::move(trie)),
      max_context_bytes_(context_cache_bytes) {
  const size_t bytes = std::max<size_t>(1, bitset_words(trie_->vocab_size()) * 8);
  max_states_ = std::max<size_t>(16, kStateCacheBytes / bytes);
  sentinel_ = uint32_t(walk_grammar_.elements.size());
  walk_grammar_.elements.push_back(Element{Element::kBytes, uint32_t(walk_grammar_.sets.size())});
  walk_grammar_.elements.push_back(Element{Element::kEnd, 0});  // never reached: matches nothing
  walk_grammar_.sets.push_back(ByteSet{});
}

size_t TokenMasker::num_position_masks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return positions_.size();
}

size_t TokenMasker::num_cached_states() const {
  std::lock_guard<std::mutex> lock(mu_);
  return states_.size();
}

size_t TokenMasker::num_cached_contexts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return contexts_.size();
}

size_t TokenMasker::num_context_walks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return context_walks_;
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
  pm.accepted = TokenSet::of(std::move(accepted), t.vocab_size());
  return pm;
}

const TokenMasker::PositionMask& TokenMasker::position_mask(uint32_t position) {
  // mu_ is held by the caller.
  auto it = positions_.find(position);
  if (it != positions_.end()) return *it->second;
  auto pm = std::make_unique<PositionMask>(compute_position_mask(position));
  return *positions_.emplace(position, std::move(pm)).first->second;
}

bool TokenMasker::walk_uncertain(const PositionMask& pm, const Stack& start,
                                 std::vector<int32_t>& out) const {
  const Grammar& g = walk_grammar_;
  // The sentinel on top: the walk reached below the part of the stack it was given.
  auto uncovered = [&](const StackSet& set) {
    for (const Stack& s : set)
      if (!s.empty() && s.back() == sentinel_) return true;
    return false;
  };
  if (!pm.uncertain_trie) {
    for (int32_t id : pm.uncertain) {
      StackSet set{start};
      bool fits = true;
      for (char c : trie_->bytes(id)) {
        set = advance(g, set, uint8_t(c));
        if (uncovered(set)) return false;
        if (set.empty()) {
          fits = false;
          break;
        }
      }
      if (fits) out.push_back(id);
    }
    return true;
  }
  // One walk of the uncertain tokens' own trie: shared prefixes are matched once.
  const TokenTrie& t = *pm.uncertain_trie;
  const auto& nodes = t.nodes();
  const auto& ids = t.token_ids();
  std::vector<StackSet> sets(1, StackSet{start});
  const uint32_t end = nodes[0].subtree_end;
  for (uint32_t i = 1; i < end;) {
    const TokenTrie::Node& n = nodes[i];
    const size_t d = n.depth;
    if (sets.size() <= d) sets.resize(d + 1);
    sets[d] = advance(g, sets[d - 1], n.byte);
    if (uncovered(sets[d])) return false;
    if (sets[d].empty()) {
      i = n.subtree_end;
      continue;
    }
    auto [b, e] = t.tokens_at(i);
    out.insert(out.end(), ids.begin() + b, ids.begin() + e);
    ++i;
  }
  return true;
}

const TokenMasker::TokenSet& TokenMasker::context_mask(const Stack& stack, const PositionMask& pm) {
  // mu_ is held by the caller.
  const uint32_t top = stack.back();
  const size_t n = stack.size();
  if (auto it = contexts_.find(stack); it != contexts_.end()) return it->second;
  StateKey key;
  auto top_k = [&](size_t k) {
    key.assign(1, sentinel_);
    key.insert(key.end(), stack.end() - std::ptrdiff_t(k), stack.end());
  };
  auto lengths = context_lengths_.find(top);
  if (lengths != context_lengths_.end()) {
    for (uint32_t k : lengths->second) {
      if (k >= n) continue;
      top_k(k);
      if (auto it = contexts_.find(key); it != contexts_.end()) return it->second;
    }
  }
  // Fewest top elements first (every uncertain token leaves the top frame, so at least 2):
  // the smaller the key, the more depths share it.
  std::vector<int32_t> ids;
  for (size_t k = 2;; ++k) {
    ids.clear();
    ++context_walks_;
    if (k >= n) {
      key = stack;
      walk_uncertain(pm, stack, ids);  // the whole stack: nothing to uncover
      break;
    }
    top_k(k);
    if (walk_uncertain(pm, key, ids)) {
      std::vector<uint32_t>& ks = context_lengths_[top];
      if (std::find(ks.begin(), ks.end(), uint32_t(k)) == ks.end()) ks.push_back(uint32_t(k));
      break;
    }
  }
  TokenSet set = TokenSet::of(std::move(ids), trie_->vocab_size());
  const size_t bytes = set.bytes() + key.size() * sizeof(uint32_t) + 64;
  if (context_bytes_ + bytes > max_context_bytes_) {
    // Start over; keep the lengths of the key just computed.
    std::vector<uint32_t> kept;
    if (key[0] == sentinel_) kept.push_back(uint32_t(key.size() - 1));
    contexts_.clear();
    context_lengths_.clear();
    context_bytes_ = 0;
    if (!kept.empty()) context_lengths_[top] = std::move(kept);
  }
  context_bytes_ += bytes;
  return contexts_.emplace(std::move(key), std::move(set)).first->second;
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
    pm.accepted.add_to(mask);
    // With nothing below the top, completing the rule completes the root: no byte may follow.
    if (s.size() == 1 || pm.uncertain.empty()) continue;
    context_mask(s, pm).add_to(mask);
  }
  lru_.emplace_back(std::move(key), mask);
  states_[lru_.back().first] = std::prev(lru_.end());
  if (states_.size() > max_states_) {
    states_.erase(lru_.front().first);
    lru_.pop_front();
  }
}

}  // namespace herd::grammar
