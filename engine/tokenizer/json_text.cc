#include "engine/tokenizer/json_text.h"

#include <utility>

#include "engine/common/error.h"

namespace herd {

namespace {

void dumps(const nlohmann::json& j, std::string& out) {
  if (j.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      if (!first) out += ", ";
      first = false;
      out += nlohmann::json(k).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out += ": ";
      dumps(v, out);
    }
    out += '}';
  } else if (j.is_array()) {
    out += '[';
    for (size_t i = 0; i < j.size(); ++i) {
      if (i) out += ", ";
      dumps(j[i], out);
    }
    out += ']';
  } else {
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

bool json_depth_within(const nlohmann::json& j, size_t max_depth) {
  // Explicit stack of (container, its depth): no recursion whatever the input.
  std::vector<std::pair<const nlohmann::json*, size_t>> stack;
  if (j.is_structured()) stack.emplace_back(&j, 1);
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (depth > max_depth) return false;
    if (v->is_object()) {
      for (const auto& [k, child] : v->items())
        if (child.is_structured()) stack.emplace_back(&child, depth + 1);
    } else {
      for (const auto& child : *v)
        if (child.is_structured()) stack.emplace_back(&child, depth + 1);
    }
  }
  return true;
}

bool json_text_depth_within(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return true;
}

std::string python_json_dumps(const nlohmann::json& j) {
  if (!json_depth_within(j, kMaxJsonDepth))
    throw Error("JSON value nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  std::string out;
  dumps(j, out);
  return out;
}

std::string trim_whitespace(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

bool split_top_level(std::string_view s, char sep, size_t max_depth,
                     std::vector<std::string_view>& parts) {
  parts.clear();
  size_t depth = 0, start = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return false;
      --depth;
    } else if (c == sep && depth == 0) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  if (in_string || depth != 0) return false;
  parts.push_back(s.substr(start));
  return true;
}

}  // namespace herd
