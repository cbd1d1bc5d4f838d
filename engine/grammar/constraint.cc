#include "engine/grammar/constraint.h"

#include <nlohmann/json.hpp>

#include "engine/common/error.h"
#include "engine/grammar/json_schema_compiler.h"
#include "engine/tokenizer/json_text.h"

namespace herd::grammar {

SequenceConstraint::SequenceConstraint(std::shared_ptr<TokenMasker> masker)
    : masker_(std::move(masker)), state_(initial_state(masker_->grammar())) {}

void SequenceConstraint::fill_mask(int32_t vocab, std::span<const int32_t> end_ids,
                                   TokenBitset& mask) const {
  masker_->fill_mask(state_, vocab, mask);
  if (is_complete(state_))
    for (int32_t id : end_ids)
      if (id >= 0 && id < vocab) bitset_set(mask, id);
}

bool SequenceConstraint::accept(int32_t token) {
  if (token < 0 || token >= masker_->trie().vocab_size()) return false;
  StackSet next = state_;
  const std::string& bytes = masker_->trie().bytes(token);
  if (bytes.empty() || !advance_bytes(masker_->grammar(), next, bytes)) return false;
  state_ = std::move(next);
  return true;
}

ConstraintCache::ConstraintCache(std::shared_ptr<const TokenTrie> trie, size_t capacity)
    : trie_(std::move(trie)), capacity_(capacity) {}

size_t ConstraintCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

std::shared_ptr<TokenMasker> ConstraintCache::get(const ResponseFormat& format) {
  if (format.type == ResponseFormat::Type::kText) return nullptr;
  // The key is the full text, not only a hash of it: two schemas never share an entry.
  std::string key = format.type == ResponseFormat::Type::kJsonObject ? "o:" : "s:";
  key += format.schema;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_key_.find(key); it != by_key_.end()) {
      lru_.splice(lru_.end(), lru_, it->second);
      return it->second->second;
    }
  }
  Grammar g;
  if (format.type == ResponseFormat::Type::kJsonObject) {
    g = any_json_object_grammar();
  } else {
    // The text's nesting is bounded (json_text.h) before nlohmann's recursive parser sees it.
    if (!json_text_depth_within(format.schema, kMaxJsonDepth))
      throw InvalidArgument(format.param, "the JSON schema nests too deeply");
    nlohmann::ordered_json schema;
    try {
      schema = nlohmann::ordered_json::parse(format.schema);
    } catch (const std::exception& e) {
      throw InvalidArgument(format.param,
                            std::string("the JSON schema is not valid JSON: ").append(e.what()));
    }
    g = compile_json_schema(schema, format.param);
  }
  auto masker = std::make_shared<TokenMasker>(std::make_shared<const Grammar>(std::move(g)), trie_);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second->second;
  lru_.emplace_back(key, masker);
  by_key_[key] = std::prev(lru_.end());
  if (lru_.size() > capacity_) {
    by_key_.erase(lru_.front().first);
    lru_.pop_front();
  }
  return masker;
}

}  // namespace herd::grammar
