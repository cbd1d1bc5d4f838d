#include "engine/grammar/grammar.h"

#include <stdexcept>

namespace herd::grammar {

uint32_t GrammarBuilder::declare() {
  rules_.emplace_back();
  defined_.push_back(false);
  return uint32_t(rules_.size() - 1);
}

void GrammarBuilder::define(uint32_t rule, const std::vector<Seq>& alternatives) {
  if (rule >= rules_.size() || defined_[rule]) throw std::logic_error("grammar rule redefined");
  rules_[rule] = alternatives;
  defined_[rule] = true;
}

uint32_t GrammarBuilder::add(const std::vector<Seq>& alternatives) {
  const uint32_t r = declare();
  define(r, alternatives);
  return r;
}

GrammarBuilder::Item GrammarBuilder::bytes(const ByteSet& set) {
  // Sets repeat a lot (digits, string characters): share them so the matcher's tables stay small.
  for (size_t i = 0; i < sets_.size(); ++i)
    if (sets_[i] == set) return Item{false, uint32_t(i)};
  sets_.push_back(set);
  return Item{false, uint32_t(sets_.size() - 1)};
}

GrammarBuilder::Item GrammarBuilder::byte(uint8_t b) {
  ByteSet s;
  s.set(b);
  return bytes(s);
}

GrammarBuilder::Item GrammarBuilder::range(uint8_t lo, uint8_t hi) {
  ByteSet s;
  for (unsigned c = lo; c <= hi; ++c) s.set(c);
  return bytes(s);
}

void GrammarBuilder::literal(Seq& seq, std::string_view text) {
  for (char c : text) seq.push_back(byte(uint8_t(c)));
}

GrammarBuilder::Seq GrammarBuilder::lit(std::string_view text) {
  Seq s;
  literal(s, text);
  return s;
}

size_t GrammarBuilder::num_elements() const {
  size_t n = 0;
  for (const auto& alts : rules_)
    for (const Seq& s : alts) n += s.size() + 1;
  return n;
}

Grammar GrammarBuilder::take(uint32_t root) {
  Grammar g;
  g.root = root;
  g.sets = std::move(sets_);
  g.rules.resize(rules_.size());
  for (size_t r = 0; r < rules_.size(); ++r) {
    if (!defined_[r]) throw std::logic_error("grammar rule declared but never defined");
    for (const Seq& alt : rules_[r]) {
      g.rules[r].push_back(uint32_t(g.elements.size()));
      for (const Item& it : alt)
        g.elements.push_back(Element{it.is_rule ? Element::kRule : Element::kBytes, it.value});
      g.elements.push_back(Element{Element::kEnd, 0});
    }
  }
  rules_.clear();
  defined_.clear();
  return g;
}

}  // namespace herd::grammar
