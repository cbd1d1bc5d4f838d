#include "engine/grammar/matcher.h"

#include <algorithm>
#include <stdexcept>

namespace herd::grammar {
namespace {

constexpr size_t kMaxExpandedStacks = 4 * kMaxStacks;

// Pushes the element at `pos` unless it ends its alternative (a finished frame is dropped:
// this is what makes tail references free).
void push_next(const Grammar& g, Stack& s, uint32_t pos) {
  if (g.elements[pos].kind != Element::kEnd) s.push_back(pos);
}

// Expands rule references on top of `s` until the top is a byte set (or `s` is empty), adding
// every resulting stack to `out`. `s` is scratch but comes back as it came in.
void expand(const Grammar& g, Stack& s, StackSet& out, int depth) {
  // Left recursion is refused at compile time; this guards against a grammar built elsewhere.
  if (depth > 4096) throw std::logic_error("grammar expansion too deep (left recursion?)");
  // Nested alternatives (anyOf of anyOf ...) can multiply into exponentially many stacks:
  // past the cap the rest are dropped (each kept one is still a viable prefix).
  if (out.size() >= kMaxExpandedStacks) return;
  if (s.empty() || g.elements[s.back()].kind == Element::kBytes) {
    out.push_back(s);
    return;
  }
  const uint32_t pos = s.back();
  const uint32_t rule = g.elements[pos].value;
  s.pop_back();
  const size_t popped = s.size();
  push_next(g, s, pos + 1);
  const size_t base = s.size();
  for (uint32_t alt : g.rules[rule]) {
    push_next(g, s, alt);
    expand(g, s, out, depth + 1);
    s.resize(base);
  }
  s.resize(popped);
  s.push_back(pos);
}

void normalize(StackSet& set) {
  std::sort(set.begin(), set.end());
  set.erase(std::unique(set.begin(), set.end()), set.end());
  if (set.size() > kMaxStacks) set.resize(kMaxStacks);
}

}  // namespace

StackSet initial_state(const Grammar& g) {
  StackSet out;
  for (uint32_t alt : g.rules[g.root]) {
    Stack s;
    push_next(g, s, alt);
    expand(g, s, out, 0);
  }
  normalize(out);
  return out;
}

StackSet position_state(const Grammar& g, uint32_t position) {
  StackSet out;
  Stack s{position};
  expand(g, s, out, 0);
  normalize(out);
  return out;
}

StackSet advance(const Grammar& g, const StackSet& state, uint8_t byte) {
  StackSet out;
  Stack scratch;
  for (const Stack& s : state) {
    if (s.empty()) continue;
    const uint32_t top = s.back();
    if (!g.sets[g.elements[top].value].test(byte)) continue;
    scratch.assign(s.begin(), s.end() - 1);
    push_next(g, scratch, top + 1);
    expand(g, scratch, out, 0);
  }
  if (out.size() > 1) normalize(out);
  return out;
}

bool advance_bytes(const Grammar& g, StackSet& state, std::string_view bytes) {
  for (char c : bytes) {
    state = advance(g, state, uint8_t(c));
    if (state.empty()) return false;
  }
  return true;
}

bool is_complete(const StackSet& state) {
  return std::any_of(state.begin(), state.end(), [](const Stack& s) { return s.empty(); });
}

bool can_continue(const StackSet& state) {
  return std::any_of(state.begin(), state.end(), [](const Stack& s) { return !s.empty(); });
}

bool has_left_recursion(const Grammar& g) {
  const size_t n = g.rules.size();
  // nullable[r]: rule r can match the empty string (fixpoint).
  std::vector<bool> nullable(n, false);
  auto alt_nullable_until = [&](uint32_t pos, std::vector<uint32_t>* leading) {
    for (;; ++pos) {
      const Element& e = g.elements[pos];
      if (e.kind == Element::kEnd) return true;
      if (e.kind == Element::kBytes) return false;
      if (leading) leading->push_back(e.value);
      if (!nullable[e.value]) return false;
    }
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (uint32_t alt : g.rules[r])
        if (alt_nullable_until(alt, nullptr)) {
          nullable[r] = true;
          changed = true;
          break;
        }
    }
  }
  // Edges r -> s where s can be expanded before any byte of r is read; a cycle is left recursion.
  std::vector<std::vector<uint32_t>> edges(n);
  for (size_t r = 0; r < n; ++r)
    for (uint32_t alt : g.rules[r]) alt_nullable_until(alt, &edges[r]);
  std::vector<uint8_t> color(n, 0);  // 0 new, 1 on the path, 2 done
  std::vector<std::pair<uint32_t, size_t>> path;
  for (uint32_t start = 0; start < n; ++start) {
    if (color[start]) continue;
    path.push_back({start, 0});
    color[start] = 1;
    while (!path.empty()) {
      auto& [r, i] = path.back();
      if (i == edges[r].size()) {
        color[r] = 2;
        path.pop_back();
        continue;
      }
      const uint32_t s = edges[r][i++];
      if (color[s] == 1) return true;
      if (color[s] == 0) {
        color[s] = 1;
        path.push_back({s, 0});
      }
    }
  }
  return false;
}

}  // namespace herd::grammar
