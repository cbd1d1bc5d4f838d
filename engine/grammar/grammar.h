// A context-free grammar over BYTES, in the flat form the matcher walks (llama.cpp's GBNF
// layout): every rule is a list of alternatives, every alternative a run of elements ended by
// kEnd, stored back to back in one array so that a parse position is a single index.
// Elements match one byte from a set, or expand a rule. Repetition is written as tail
// recursion (`items := item items | ε`), which the matcher runs without growing its stack.
// Left recursion is not allowed (the compiler never emits it).
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herd::grammar {

using ByteSet = std::bitset<256>;

struct Element {
  enum Kind : uint8_t { kBytes, kRule, kEnd };
  Kind kind = kEnd;
  uint32_t value = 0;  // kBytes: index into Grammar::sets; kRule: rule id
};

struct Grammar {
  std::vector<Element> elements;
  std::vector<ByteSet> sets;
  // rules[r] = the element index where each alternative of rule r starts.
  std::vector<std::vector<uint32_t>> rules;
  uint32_t root = 0;
};

// Builds a Grammar. Rules may be declared before they are defined (for recursion); every
// declared rule must be defined once before take().
class GrammarBuilder {
 public:
  // One item of an alternative: a byte set or a rule reference.
  struct Item {
    bool is_rule = false;
    uint32_t value = 0;  // rule id, or index into the builder's sets
  };
  using Seq = std::vector<Item>;

  uint32_t declare();
  void define(uint32_t rule, const std::vector<Seq>& alternatives);
  uint32_t add(const std::vector<Seq>& alternatives);  // declare + define

  Item bytes(const ByteSet& set);
  Item byte(uint8_t b);
  Item range(uint8_t lo, uint8_t hi);
  static Item ref(uint32_t rule) { return Item{true, rule}; }
  // The literal's bytes, one element each, appended to `seq`.
  void literal(Seq& seq, std::string_view text);
  Seq lit(std::string_view text);

  size_t num_elements() const;
  // Throws std::logic_error when a declared rule was never defined.
  Grammar take(uint32_t root);

 private:
  std::vector<std::vector<Seq>> rules_;
  std::vector<bool> defined_;
  std::vector<ByteSet> sets_;
};

}  // namespace herd::grammar
