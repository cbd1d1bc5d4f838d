// parse_llama31_tool_calls: the model's JSON tool calls back into ChatToolCall. Built to take
// any bytes (fuzzed): no exceptions escape, and nesting depth — of the text and of any JSON
// text inside a string value — is bounded before nlohmann parses or dumps it.
#include <cstdint>

#include "engine/tokenizer/chat_format.h"
#include "engine/tokenizer/json_text.h"

namespace herd {

namespace {

constexpr size_t kMaxDepth = 64;

bool strip_prefix(std::string& s, std::string_view p) {
  if (s.compare(0, p.size(), p) != 0) return false;
  s.erase(0, p.size());
  return true;
}

bool strip_suffix(std::string& s, std::string_view p) {
  if (s.size() < p.size() || s.compare(s.size() - p.size(), p.size(), p) != 0) return false;
  s.resize(s.size() - p.size());
  return true;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// "call_" + 24 base-62 characters derived from the seed and the call's index.
std::string call_id(const std::string& seed, size_t index) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the seed
  for (unsigned char c : seed) h = (h ^ c) * 1099511628211ull;
  h = splitmix64(h ^ splitmix64(index + 1));
  static const char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) {
    if (i % 8 == 0) h = splitmix64(h);
    id += kAlphabet[h % 62];
    h /= 62;
  }
  return id;
}

std::optional<ChatToolCall> parse_one(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
    return std::nullopt;
  auto args = j.find("parameters");
  if (args == j.end()) args = j.find("arguments");
  ChatToolCall call;
  call.name = name->get<std::string>();
  if (args == j.end() || args->is_null()) {
    call.arguments = "{}";
  } else if (args->is_object()) {
    call.arguments = args->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else if (args->is_string()) {
    // Arguments sent as JSON text: accept when that text is an object. The text inside the
    // string escaped split_top_level's depth check: bound it before parsing and dumping
    // (both would otherwise walk a value of any depth; the dump recurses per level).
    const std::string& text = args->get_ref<const std::string&>();
    if (!json_text_depth_within(text, kMaxDepth)) return std::nullopt;
    auto inner = nlohmann::json::parse(text, nullptr, false);
    if (inner.is_discarded() || !inner.is_object()) return std::nullopt;
    call.arguments = inner.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    return std::nullopt;
  }
  // Keys other than name/parameters mean this is some other JSON object, not a call.
  for (const auto& [k, v] : j.items())
    if (k != "name" && k != "parameters" && k != "arguments" && k != "type") return std::nullopt;
  return call;
}

std::optional<std::vector<ChatToolCall>> parse(const std::string& text,
                                               const std::string& id_seed) {
  std::string s = trim_whitespace(text);
  strip_prefix(s, "<|python_tag|>");
  while (strip_suffix(s, "<|eom_id|>") || strip_suffix(s, "<|eot_id|>")) s = trim_whitespace(s);
  s = trim_whitespace(s);
  if (s.empty() || (s[0] != '{' && s[0] != '[')) return std::nullopt;
  std::vector<std::string_view> parts;
  if (!split_top_level(s, ';', kMaxDepth, parts)) return std::nullopt;
  std::vector<ChatToolCall> calls;
  for (std::string_view part : parts) {
    std::string p = trim_whitespace(part);
    if (p.empty()) continue;
    auto j = nlohmann::json::parse(p, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return std::nullopt;
    if (j.is_array()) {  // [{...}, {...}]: several calls in one list
      if (j.empty()) return std::nullopt;
      for (const auto& e : j) {
        auto c = parse_one(e);
        if (!c) return std::nullopt;
        calls.push_back(std::move(*c));
      }
    } else {
      auto c = parse_one(j);
      if (!c) return std::nullopt;
      calls.push_back(std::move(*c));
    }
  }
  if (calls.empty()) return std::nullopt;
  for (size_t i = 0; i < calls.size(); ++i) calls[i].id = call_id(id_seed, i);
  return calls;
}

}  // namespace

std::optional<std::vector<ChatToolCall>> parse_llama31_tool_calls(const std::string& text,
                                                                  const std::string& id_seed) {
  try {
    return parse(text, id_seed);
  } catch (...) {  // bad_alloc and the like: still not a tool call we can return
    return std::nullopt;
  }
}

}  // namespace herd
