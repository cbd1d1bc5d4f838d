// Finds added tokens (tokenizer.json "added_tokens") in text. Special ones match only when the
// caller allows special tokens; non-special added tokens always match, as in Hugging Face.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

class AddedTokenMatcher {
 public:
  void add(std::string content, int32_t id, bool special);
  // Drops every entry with this id (used when a token is renamed).
  void remove_id(int32_t id);

  struct Piece {
    std::string_view text;
    int32_t id;  // -1: plain text to tokenize; otherwise the matched added token
  };
  // Splits text into plain runs and added tokens, longest match first at each position.
  std::vector<Piece> split(std::string_view text, bool allow_special) const;

 private:
  struct Entry {
    std::string content;
    int32_t id;
    bool special;
  };
  void reindex();
  std::vector<Entry> entries_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // entry indices, longest first
  bool any_plain_ = false;                                // any non-special added token
};

}  // namespace herd
