// The byte-level pushdown automaton of a Grammar. A parse state is a set of stacks (several
// when alternatives share a prefix, e.g. anyOf of two objects); each stack lists element
// indices, the top (back) being the byte-set element to match next, so every stack is a viable
// prefix. An empty stack means the root rule is complete. Advancing by a byte keeps the stacks
// whose top accepts it, steps past that element and expands rule references until each top
// is a byte set again (tail references replace their frame, so loops do not grow the stack).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/grammar/grammar.h"

namespace herd::grammar {

using Stack = std::vector<uint32_t>;
using StackSet = std::vector<Stack>;  // sorted, no duplicates

// Stacks beyond this many are dropped (ambiguous grammars): each kept stack is still a
// viable prefix, so output stays valid; at worst some continuations are not offered.
inline constexpr size_t kMaxStacks = 256;

// The state before any byte: the root rule's alternatives, expanded.
StackSet initial_state(const Grammar& g);
// The state for a stack that holds only `position` (the top of some real stack): what can
// follow inside the rule that position belongs to, whatever its caller.
StackSet position_state(const Grammar& g, uint32_t position);
// The state after `byte` (empty: the byte is not allowed).
StackSet advance(const Grammar& g, const StackSet& state, uint8_t byte);
// Advances by every byte of `bytes`; false (and `state` unspecified) when one is refused.
bool advance_bytes(const Grammar& g, StackSet& state, std::string_view bytes);
// True when some stack is empty: the input so far is a complete sentence of the root rule.
bool is_complete(const StackSet& state);
// True when some stack can still take a byte.
bool can_continue(const StackSet& state);

// True when the grammar has a rule that can reach itself without consuming a byte (the
// matcher would expand it forever). Compilers refuse such grammars.
bool has_left_recursion(const Grammar& g);

}  // namespace herd::grammar
