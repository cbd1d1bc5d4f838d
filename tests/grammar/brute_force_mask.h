// The reference for mask tests: each token's bytes run through the matcher from the full
// state, one token at a time (no caches, no trie).
#pragma once

#include <string>
#include <vector>

#include "engine/grammar/matcher.h"
#include "engine/grammar/token_masker.h"
#include "engine/grammar/token_trie.h"

namespace herd::grammar::testing {

inline TokenBitset brute_force(const Grammar& g, const TokenTrie& t, const StackSet& state) {
  TokenBitset m(bitset_words(t.vocab_size()), 0);
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    if (t.bytes(id).empty()) continue;
    StackSet s = state;
    if (advance_bytes(g, s, t.bytes(id))) bitset_set(m, id);
  }
  return m;
}

// Every byte, plus multi-byte tokens that span JSON punctuation, quotes and split UTF-8, as
// byte-level BPE vocabularies have.
inline std::vector<std::string> small_vocab() {
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b) v.push_back(std::string(1, char(b)));  // every byte
  for (const char* s : {"{\"",          "\":",  "\": \"", "\",",  "\", \"",  "\"}",      "\"},",
                        "}]",           "]}",   "[{",     "name", "age",     "true",     "false",
                        "null",         "nul",  "12",     "3.",   ".5",      "e+",       "\\n",
                        "\\u00",        "ab\"", "\"a",    "\xC3", "\xA9\"",  "\xE2\x82", "\xAC",
                        "\xF0\x9F\x98", " \"",  ", ",     "red",  "\"red\"", "green",    "},{\"",
                        "0,",           "-1",   "[]",     "{}",   "\"\"",    "\":[",     "\",\"",
                        "\"]",          "1e",   "99"})
    v.push_back(s);
  return v;
}

}  // namespace herd::grammar::testing
