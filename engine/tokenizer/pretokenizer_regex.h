// The split regex of byte-level BPE (Hugging Face "Split" pre-tokenizer with behavior
// "Isolated"), run with PCRE2 in UTF + UCP mode and JIT-compiled.
#pragma once

#include <string>
#include <string_view>

namespace herd {

// The Llama 3 split pattern, used when tokenizer.json names none.
extern const char* const kLlama3SplitPattern;

class SplitRegex {
 public:
  // Throws herd::Error naming `where` if the pattern does not compile.
  SplitRegex(const std::string& pattern, const std::string& where);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // Calls fn(piece) for every match and every gap between matches, in order. `text` must be
  // valid UTF-8 (the caller has checked it).
  template <class Fn>
  void split(std::string_view text, Fn&& fn) const {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t start, end;
      if (!next_match(text, pos, start, end)) break;
      if (start > pos) fn(text.substr(pos, start - pos));
      fn(text.substr(start, end - start));
      pos = end;
    }
    if (pos < text.size()) fn(text.substr(pos));
  }

 private:
  // Finds the next non-empty match at or after pos; false when there is none.
  bool next_match(std::string_view text, size_t pos, size_t& start, size_t& end) const;
  void* code_ = nullptr;  // pcre2_code_8*, kept opaque so that users need no pcre2.h
  bool jit_ = false;
};

}  // namespace herd
