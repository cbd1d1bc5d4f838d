// A tiny in-memory Tokenizer for the sample tests: token i's bytes are vocab[i] (possibly a
// partial UTF-8 sequence); ids listed as special are special tokens. encode() is greedy
// longest match, enough to build id sequences in tests.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"

namespace herd::testing {

class FakeTokenizer : public Tokenizer {
 public:
  FakeTokenizer(std::vector<std::string> vocab, std::set<int32_t> special, int32_t eos = -1)
      : vocab_(std::move(vocab)), special_(std::move(special)), eos_(eos) {}

  std::vector<int32_t> encode(std::string_view text, bool allow_special) const override {
    std::vector<int32_t> ids;
    while (!text.empty()) {
      int32_t best = -1;
      for (int32_t i = 0; i < int32_t(vocab_.size()); ++i) {
        if (!allow_special && special_.count(i)) continue;
        if (text.starts_with(vocab_[i]) && !vocab_[i].empty() &&
            (best < 0 || vocab_[i].size() > vocab_[best].size())) {
          best = i;
        }
      }
      if (best < 0) break;
      ids.push_back(best);
      text.remove_prefix(vocab_[best].size());
    }
    return ids;
  }
  std::string token_bytes(int32_t id) const override { return vocab_.at(size_t(id)); }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    for (int32_t id : ids) s += token_bytes(id);
    return s;
  }
  int32_t vocab_size() const override { return int32_t(vocab_.size()); }
  std::optional<int32_t> token_id(std::string_view text) const override {
    for (int32_t i = 0; i < int32_t(vocab_.size()); ++i) {
      if (vocab_[i] == text) return i;
    }
    return std::nullopt;
  }
  bool is_special(int32_t id) const override { return special_.count(id) > 0; }
  int32_t bos_id() const override { return -1; }
  int32_t eos_id() const override { return eos_; }
  bool adds_bos() const override { return false; }

 private:
  std::vector<std::string> vocab_;
  std::set<int32_t> special_;
  int32_t eos_;
};

}  // namespace herd::testing
