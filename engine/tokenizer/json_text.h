// Small JSON text helpers for the chat format: Python json.dumps-style rendering (the chat
// template's `tojson`), whitespace trimming, and a scanner that splits ';'-separated JSON
// values without parsing them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

// Like Python's json.dumps(x, ensure_ascii=False): ", " and ": " separators, one line.
std::string python_json_dumps(const nlohmann::json& j);

// Python str.strip() for ASCII whitespace.
std::string trim_whitespace(std::string_view s);

// Splits s at ';' that lie outside JSON strings and brackets. Returns false (and leaves
// `parts` unspecified) when brackets are unbalanced, a string is unterminated, or nesting is
// deeper than max_depth — all cases no well-formed tool call has.
bool split_top_level(std::string_view s, char sep, size_t max_depth,
                     std::vector<std::string_view>& parts);

}  // namespace herd
