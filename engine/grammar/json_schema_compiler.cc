#include "engine/grammar/json_schema_compiler.h"

#include <map>
#include <optional>
#include <set>

#include "engine/common/error.h"
#include "engine/grammar/matcher.h"

namespace herd::grammar {
namespace {

using json = nlohmann::ordered_json;
using Seq = GrammarBuilder::Seq;
using Item = GrammarBuilder::Item;

const std::set<std::string>& annotation_keywords() {
  static const std::set<std::string> k = {"title",    "description", "default",  "examples",
                                          "$schema",  "$id",         "$comment", "deprecated",
                                          "readOnly", "writeOnly",   "$defs",    "definitions",
                                          "strict",   "name",        "$anchor"};
  return k;
}

const std::set<std::string>& supported_keywords() {
  static const std::set<std::string> k = {"type",  "properties", "required", "additionalProperties",
                                          "items", "minItems",   "maxItems", "enum",
                                          "const", "anyOf",      "$ref"};
  return k;
}

class Compiler {
 public:
  Compiler(const json& root, std::string param) : root_(root), param_(std::move(param)) {}

  Grammar run() {
    const uint32_t top = value(root_, "", 0);
    if (b_.num_elements() > kMaxGrammarElements) fail("", "the schema is too large to compile");
    Grammar g = b_.take(top);
    if (has_left_recursion(g))
      fail("", "the schema recurses through $ref without any value in between");
    return g;
  }

  uint32_t any_object() { return object_any(kMaxAnyDepth); }
  Grammar take(uint32_t root) { return b_.take(root); }

 private:
  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw InvalidArgument(param_, std::string("unsupported JSON schema")
                                      .append(where.empty() ? "" : " at " + where)
                                      .append(": ")
                                      .append(what));
  }

  // ---- shared primitive rules (built once) ----
  uint32_t ws() {  // one optional space
    if (!ws_) ws_ = b_.add({b_.lit(" "), {}});
    return *ws_;
  }

  uint32_t string_rule() {
    if (string_) return *string_;
    // One character of a JSON string's content: unescaped printable ASCII except '"' and '\',
    // a well-formed UTF-8 multi-byte sequence, or an escape. \u escapes of surrogates
    // (\uD800-\uDFFF) are left out: alone they are not text.
    std::vector<Seq> ch;
    ByteSet ascii;
    for (unsigned c = 0x20; c <= 0x7F; ++c)
      if (c != '"' && c != '\\') ascii.set(c);
    ch.push_back({b_.bytes(ascii)});
    const Item cont = b_.range(0x80, 0xBF);
    ch.push_back({b_.range(0xC2, 0xDF), cont});
    ch.push_back({b_.byte(0xE0), b_.range(0xA0, 0xBF), cont});
    ByteSet e3;
    for (unsigned c = 0xE1; c <= 0xEF; ++c)
      if (c != 0xED) e3.set(c);
    ch.push_back({b_.bytes(e3), cont, cont});
    ch.push_back({b_.byte(0xED), b_.range(0x80, 0x9F), cont});
    ch.push_back({b_.byte(0xF0), b_.range(0x90, 0xBF), cont, cont});
    ch.push_back({b_.range(0xF1, 0xF3), cont, cont, cont});
    ch.push_back({b_.byte(0xF4), b_.range(0x80, 0x8F), cont, cont});
    ByteSet esc;
    for (char c : std::string("\"\\/bfnrt")) esc.set(uint8_t(c));
    ch.push_back({b_.byte('\\'), b_.bytes(esc)});
    ByteSet hex, hex_first;
    for (char c : std::string("0123456789abcdefABCDEF")) hex.set(uint8_t(c));
    hex_first = hex;
    hex_first.reset('d'), hex_first.reset('D');
    const Item h = b_.bytes(hex);
    ch.push_back({b_.byte('\\'), b_.byte('u'), b_.bytes(hex_first), h, h, h});
    const uint32_t character = b_.add(ch);
    const uint32_t chars = b_.declare();
    b_.define(chars, {{GrammarBuilder::ref(character), GrammarBuilder::ref(chars)}, {}});
    string_ = b_.add({{b_.byte('"'), GrammarBuilder::ref(chars), b_.byte('"')}});
    return *string_;
  }

  // Up to `n` more digits.
  uint32_t digits_upto(int n) {
    uint32_t r = b_.add({{}});
    for (int i = 0; i < n; ++i) r = b_.add({{b_.range('0', '9'), GrammarBuilder::ref(r)}, {}});
    return r;
  }

  uint32_t integer_rule() {
    if (integer_) return *integer_;
    const uint32_t more = digits_upto(15);
    const uint32_t unsigned_int =
        b_.add({b_.lit("0"), {b_.range('1', '9'), GrammarBuilder::ref(more)}});
    integer_ = b_.add(
        {{GrammarBuilder::ref(unsigned_int)}, {b_.byte('-'), GrammarBuilder::ref(unsigned_int)}});
    return *integer_;
  }

  uint32_t number_rule() {
    if (number_) return *number_;
    const uint32_t frac_more = digits_upto(14);
    const uint32_t frac =
        b_.add({{}, {b_.byte('.'), b_.range('0', '9'), GrammarBuilder::ref(frac_more)}});
    ByteSet e, sign;
    e.set('e'), e.set('E'), sign.set('+'), sign.set('-');
    const uint32_t exp_more = digits_upto(1);
    const uint32_t exp_sign = b_.add({{}, {b_.bytes(sign)}});
    const uint32_t exp = b_.add({{},
                                 {b_.bytes(e), GrammarBuilder::ref(exp_sign), b_.range('0', '9'),
                                  GrammarBuilder::ref(exp_more)}});
    number_ = b_.add({{GrammarBuilder::ref(integer_rule()), GrammarBuilder::ref(frac),
                       GrammarBuilder::ref(exp)}});
    return *number_;
  }

  uint32_t literal_rule(const std::string& text) {
    auto it = literals_.find(text);
    if (it != literals_.end()) return it->second;
    const uint32_t r = b_.add({b_.lit(text)});
    literals_.emplace(text, r);
    return r;
  }

  // "a, b, c" with at least `min` and at most `max` (-1: unbounded) items.
  uint32_t list(uint32_t item, int min, int max, const std::string& open,
                const std::string& close) {
    // rest(k): what may follow after k items.
    const uint32_t sep_ws = ws();
    std::optional<uint32_t> loop;
    auto rest = [&](auto&& self, int k) -> uint32_t {
      Seq more = b_.lit(",");
      more.push_back(GrammarBuilder::ref(sep_ws));
      more.push_back(GrammarBuilder::ref(item));
      if (k < min) {
        more.push_back(GrammarBuilder::ref(self(self, k + 1)));
        return b_.add({more});
      }
      if (max < 0) {
        if (!loop) {
          loop = b_.declare();
          Seq l = more;
          l.push_back(GrammarBuilder::ref(*loop));
          b_.define(*loop, {l, {}});
        }
        return *loop;
      }
      if (k >= max) return b_.add({{}});
      more.push_back(GrammarBuilder::ref(self(self, k + 1)));
      return b_.add({more, {}});
    };
    Seq nonempty = b_.lit(open);
    nonempty.push_back(GrammarBuilder::ref(item));
    nonempty.push_back(GrammarBuilder::ref(rest(rest, 1)));
    b_.literal(nonempty, close);
    std::vector<Seq> alts{nonempty};
    if (min == 0) alts.push_back(b_.lit(open + close));
    if (max == 0) alts = {b_.lit(open + close)};
    return b_.add(alts);
  }

  // Untyped values nesting at most `depth` more levels.
  uint32_t any_value(int depth) {
    if (auto it = any_.find(depth); it != any_.end()) return it->second;
    std::vector<Seq> alts = {{GrammarBuilder::ref(string_rule())},
                             {GrammarBuilder::ref(number_rule())},
                             b_.lit("true"),
                             b_.lit("false"),
                             b_.lit("null")};
    if (depth > 0) {
      alts.push_back({GrammarBuilder::ref(object_any(depth))});
      alts.push_back({GrammarBuilder::ref(list(any_value(depth - 1), 0, -1, "[", "]"))});
    }
    const uint32_t r = b_.add(alts);
    any_.emplace(depth, r);
    return r;
  }

  uint32_t object_any(int depth) {
    Seq pair{GrammarBuilder::ref(string_rule())};
    b_.literal(pair, ":");
    pair.push_back(GrammarBuilder::ref(ws()));
    pair.push_back(GrammarBuilder::ref(any_value(depth - 1)));
    return list(b_.add({pair}), 0, -1, "{", "}");
  }

  // ---- schema nodes ----
  uint32_t value(const json& s, const std::string& where, int depth) {
    if (depth > kMaxSchemaDepth)
      fail(where, std::string("nesting deeper than ").append(std::to_string(kMaxSchemaDepth)));
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(where, "the schema false admits no value");
      return any_value(kMaxAnyDepth);
    }
    if (!s.is_object()) fail(where, "a schema must be an object or a boolean");
    for (const auto& [k, v] : s.items()) {
      (void)v;
      if (!supported_keywords().count(k) && !annotation_keywords().count(k))
        fail(where, "keyword '" + k + "' is not supported");
    }
    if (s.contains("$ref")) {
      if (s.size() > 1) {
        for (const auto& [k, v] : s.items()) {
          (void)v;
          if (k != "$ref" && !annotation_keywords().count(k))
            fail(where, "'$ref' next to '" + k + "' is not supported");
        }
      }
      return ref(s["$ref"], where, depth);
    }
    if (s.contains("const")) return literal_rule(s["const"].dump());
    if (s.contains("enum")) {
      const json& e = s["enum"];
      if (!e.is_array() || e.empty()) fail(where, "'enum' must be a non-empty array");
      std::vector<Seq> alts;
      for (const json& v : e) alts.push_back({GrammarBuilder::ref(literal_rule(v.dump()))});
      return b_.add(alts);
    }
    if (s.contains("anyOf")) {
      const json& a = s["anyOf"];
      if (!a.is_array() || a.empty()) fail(where, "'anyOf' must be a non-empty array");
      for (const char* k : {"type", "properties", "items", "required", "additionalProperties"})
        if (s.contains(k))
          fail(where, std::string("'anyOf' next to '").append(k).append("' is not supported"));
      std::vector<Seq> alts;
      for (size_t i = 0; i < a.size(); ++i)
        alts.push_back(
            {GrammarBuilder::ref(value(a[i], where + "/anyOf/" + std::to_string(i), depth + 1))});
      return b_.add(alts);
    }
    std::vector<std::string> types;
    if (s.contains("type")) {
      const json& t = s["type"];
      if (t.is_string()) {
        types.push_back(t.get<std::string>());
      } else if (t.is_array() && !t.empty()) {
        for (const json& x : t) {
          if (!x.is_string()) fail(where, "'type' entries must be strings");
          types.push_back(x.get<std::string>());
        }
      } else {
        fail(where, "'type' must be a string or a non-empty array of strings");
      }
    } else if (s.contains("properties") || s.contains("required") ||
               s.contains("additionalProperties")) {
      types.push_back("object");
    } else if (s.contains("items")) {
      types.push_back("array");
    } else {
      return any_value(kMaxAnyDepth);
    }
    std::vector<Seq> alts;
    for (const std::string& t : types)
      alts.push_back({GrammarBuilder::ref(typed(s, t, where, depth))});
    return alts.size() == 1 ? alts[0][0].value : b_.add(alts);
  }

  uint32_t typed(const json& s, const std::string& t, const std::string& where, int depth) {
    if (t == "string") return string_rule();
    if (t == "number") return number_rule();
    if (t == "integer") return integer_rule();
    if (t == "boolean") return b_.add({b_.lit("true"), b_.lit("false")});
    if (t == "null") return literal_rule("null");
    if (t == "object") return object(s, where, depth);
    if (t == "array") return array(s, where, depth);
    fail(where, "unknown type '" + t + "'");
  }

  uint32_t array(const json& s, const std::string& where, int depth) {
    auto bound = [&](const char* k, int dflt) {
      if (!s.contains(k)) return dflt;
      const json& v = s[k];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxItemsBound)
        fail(where, std::string("'")
                        .append(k)
                        .append("' must be an integer in [0, ")
                        .append(std::to_string(kMaxItemsBound))
                        .append("]"));
      return int(v.get<int64_t>());
    };
    const int min = bound("minItems", 0), max = bound("maxItems", -1);
    if (max >= 0 && min > max) fail(where, "'minItems' is greater than 'maxItems'");
    uint32_t item;
    if (!s.contains("items")) {
      item = any_value(kMaxAnyDepth - 1);
    } else {
      if (s["items"].is_array()) fail(where, "'items' as an array (tuples) is not supported");
      item = value(s["items"], where + "/items", depth + 1);
    }
    return list(item, min, max, "[", "]");
  }

  uint32_t object(const json& s, const std::string& where, int depth) {
    const json empty = json::object();
    const json& props = s.contains("properties") ? s["properties"] : empty;
    if (!props.is_object()) fail(where, "'properties' must be an object");
    std::set<std::string> required;
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail(where, "'required' must be an array of strings");
      for (const json& r : s["required"]) {
        if (!r.is_string()) fail(where, "'required' must be an array of strings");
        required.insert(r.get<std::string>());
      }
    }
    const bool closed = s.contains("additionalProperties") &&
                        s["additionalProperties"].is_boolean() &&
                        !s["additionalProperties"].get<bool>();
    if (s.contains("additionalProperties") && !s["additionalProperties"].is_boolean())
      (void)value(s["additionalProperties"], where + "/additionalProperties", depth + 1);
    struct Prop {
      uint32_t rule;
      bool required;
    };
    std::vector<Prop> list_props;
    std::set<std::string> seen;
    for (const auto& [name, sub] : props.items()) {
      Seq p = b_.lit(json(name).dump());
      b_.literal(p, ":");
      p.push_back(GrammarBuilder::ref(ws()));
      p.push_back(GrammarBuilder::ref(value(sub, where + "/properties/" + name, depth + 1)));
      list_props.push_back(Prop{b_.add({p}), required.count(name) > 0});
      seen.insert(name);
    }
    // Required names the schema does not describe may hold any value.
    for (const std::string& name : required) {
      if (seen.count(name)) continue;
      if (closed) fail(where, "required property '" + name + "' is not in 'properties'");
      Seq p = b_.lit(json(name).dump());
      b_.literal(p, ":");
      p.push_back(GrammarBuilder::ref(ws()));
      p.push_back(GrammarBuilder::ref(any_value(kMaxAnyDepth - 1)));
      list_props.push_back(Prop{b_.add({p}), true});
    }
    if (list_props.empty() && !closed) return object_any(kMaxAnyDepth);
    // rest(i, emitted): properties i.. after `emitted` (a comma comes first when something was).
    std::map<std::pair<size_t, bool>, uint32_t> memo;
    const uint32_t sep_ws = ws();
    auto rest = [&](auto&& self, size_t i, bool emitted) -> uint32_t {
      if (auto it = memo.find({i, emitted}); it != memo.end()) return it->second;
      uint32_t r;
      if (i == list_props.size()) {
        r = b_.add({{}});
      } else {
        Seq take;
        if (emitted) {
          b_.literal(take, ",");
          take.push_back(GrammarBuilder::ref(sep_ws));
        }
        take.push_back(GrammarBuilder::ref(list_props[i].rule));
        take.push_back(GrammarBuilder::ref(self(self, i + 1, true)));
        std::vector<Seq> alts{take};
        if (!list_props[i].required)
          alts.push_back({GrammarBuilder::ref(self(self, i + 1, emitted))});
        r = b_.add(alts);
      }
      memo[{i, emitted}] = r;
      return r;
    };
    Seq obj = b_.lit("{");
    obj.push_back(GrammarBuilder::ref(rest(rest, 0, false)));
    b_.literal(obj, "}");
    return b_.add({obj});
  }

  uint32_t ref(const json& r, const std::string& where, int depth) {
    if (!r.is_string()) fail(where, "'$ref' must be a string");
    const std::string target = r.get<std::string>();
    if (auto it = refs_.find(target); it != refs_.end()) return it->second;
    if (target.empty() || target[0] != '#')
      fail(where, "only local '$ref's (starting with '#') are supported, not '" + target + "'");
    const json* node = nullptr;
    try {
      node = &root_.at(json::json_pointer(target.substr(1)));
    } catch (const std::exception&) {
      fail(where, "'$ref' '" + target + "' does not resolve inside the schema");
    }
    // Declared before it is compiled, so that the target may refer to itself.
    const uint32_t rule = b_.declare();
    refs_.emplace(target, rule);
    b_.define(rule, {{GrammarBuilder::ref(value(*node, target, depth + 1))}});
    return rule;
  }

  const json& root_;
  std::string param_;
  GrammarBuilder b_;
  std::optional<uint32_t> ws_, string_, integer_, number_;
  std::map<std::string, uint32_t> literals_;
  std::map<int, uint32_t> any_;
  std::map<std::string, uint32_t> refs_;
};

}  // namespace

Grammar compile_json_schema(const nlohmann::ordered_json& schema, const std::string& param) {
  return Compiler(schema, param).run();
}

Grammar any_json_object_grammar() {
  static const nlohmann::ordered_json none;
  Compiler c(none, "response_format");
  return c.take(c.any_object());
}

}  // namespace herd::grammar
