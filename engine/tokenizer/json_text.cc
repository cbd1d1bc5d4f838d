#include "engine/tokenizer/json_text.h"

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

std::string python_json_dumps(const nlohmann::json& j) {
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
