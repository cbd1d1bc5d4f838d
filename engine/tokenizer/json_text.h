// Small JSON text helpers for the chat format: Python json.dumps-style rendering (the chat
// template's `tojson`), whitespace trimming, and a scanner that splits ';'-separated JSON
// values without parsing them.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

// How deep request JSON handed to the chat code (tool definitions, tool-call arguments) may
// nest arrays and objects. nlohmann's dump and copy recurse once per level, so a value nested
// ~17,500 deep overflows a thread's stack; every walk here checks this bound first, without
// recursing. Real JSON schemas and arguments stay far below it.
inline constexpr size_t kMaxJsonDepth = 128;

// True when `j` nests arrays/objects at most max_depth deep (a scalar is depth 0, [] and {}
// depth 1). Iterative, and stops at the first level past the bound: cheap on any input.
bool json_depth_within(const nlohmann::json& j, size_t max_depth);

// The same bound on JSON *text*, counting '[' and '{' outside strings, without parsing. Text
// that is not valid JSON is measured the same way (its brackets need not balance).
bool json_text_depth_within(std::string_view text, size_t max_depth);

// Like Python's json.dumps(x, ensure_ascii=False): ", " and ": " separators, one line.
// Throws herd::Error when `j` nests deeper than kMaxJsonDepth (callers check first and name
// the field; this is the backstop that keeps the recursive renderer bounded).
std::string python_json_dumps(const nlohmann::json& j);

// Python str.strip() for ASCII whitespace.
std::string trim_whitespace(std::string_view s);

// Splits s at ';' that lie outside JSON strings and brackets. Returns false (and leaves
// `parts` unspecified) when brackets are unbalanced, a string is unterminated, or nesting is
// deeper than max_depth — all cases no well-formed tool call has.
bool split_top_level(std::string_view s, char sep, size_t max_depth,
                     std::vector<std::string_view>& parts);

}  // namespace herd
