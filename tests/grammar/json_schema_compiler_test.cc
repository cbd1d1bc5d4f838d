// The schema compiler and the byte matcher together: which byte strings a compiled schema
// accepts as a complete value, and which schemas are refused (and how the error names them).
#include "engine/grammar/json_schema_compiler.h"

#include <gtest/gtest.h>

#include <string>

#include "engine/common/error.h"
#include "engine/grammar/matcher.h"

namespace herd::grammar {
namespace {

using json = nlohmann::ordered_json;

bool accepts(const Grammar& g, const std::string& text) {
  StackSet s = initial_state(g);
  return advance_bytes(g, s, text) && is_complete(s);
}

bool is_prefix(const Grammar& g, const std::string& text) {
  StackSet s = initial_state(g);
  return advance_bytes(g, s, text);
}

Grammar compile(const std::string& schema) {
  return compile_json_schema(json::parse(schema), "response_format");
}

TEST(JsonSchemaCompiler, ObjectWithRequiredProperties) {
  const Grammar g = compile(R"({"type":"object","properties":{"name":{"type":"string"},
      "age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false})");
  EXPECT_TRUE(accepts(g, R"({"name":"Ann","age":31})"));
  EXPECT_TRUE(accepts(g, R"({"name": "Ann", "age": -7})"));
  EXPECT_FALSE(accepts(g, R"({"age":31,"name":"Ann"})"));  // schema order
  EXPECT_FALSE(accepts(g, R"({"name":"Ann"})"));           // age is required
  EXPECT_FALSE(accepts(g, R"({"name":"Ann","age":3.5})"));
  EXPECT_FALSE(accepts(g, R"({"name":"Ann","age":01})"));
  EXPECT_TRUE(is_prefix(g, R"({"name":"An)"));
  EXPECT_FALSE(is_prefix(g, R"({"nam ")"));
}

TEST(JsonSchemaCompiler, OptionalPropertiesMayBeLeftOut) {
  const Grammar g = compile(R"({"type":"object","properties":{"a":{"type":"boolean"},
      "b":{"type":"null"},"c":{"type":"number"}},"required":["b"]})");
  EXPECT_TRUE(accepts(g, R"({"b":null})"));
  EXPECT_TRUE(accepts(g, R"({"a":true,"b":null,"c":1.5e-3})"));
  EXPECT_TRUE(accepts(g, R"({"b":null,"c":0})"));
  EXPECT_FALSE(accepts(g, R"({"a":false})"));
  EXPECT_FALSE(accepts(g, R"({,"b":null})"));
  EXPECT_FALSE(accepts(g, R"({"b":null,})"));
}

TEST(JsonSchemaCompiler, StringsAreWellFormedUtf8WithEscapes) {
  const Grammar g = compile(R"({"type":"string"})");
  EXPECT_TRUE(accepts(g, "\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\""));
  EXPECT_TRUE(accepts(g, R"("a\"b\\c\n\u00e9")"));
  EXPECT_FALSE(accepts(g, "\"\xC3\""));          // truncated sequence
  EXPECT_FALSE(accepts(g, "\"\xC0\x80\""));      // overlong
  EXPECT_FALSE(accepts(g, "\"\xED\xA0\x80\""));  // surrogate
  EXPECT_FALSE(accepts(g, "\"a\nb\""));          // raw control character
  EXPECT_FALSE(accepts(g, R"("\ud800")"));       // lone surrogate escape
  EXPECT_FALSE(accepts(g, R"("\x")"));
  EXPECT_TRUE(is_prefix(g, "\"\xF0\x9F"));  // partial UTF-8 is a viable prefix
}

TEST(JsonSchemaCompiler, NumbersAreBounded) {
  const Grammar n = compile(R"({"type":"number"})");
  EXPECT_TRUE(accepts(n, "0"));
  EXPECT_TRUE(accepts(n, "-12.5E+10"));
  EXPECT_TRUE(accepts(n, "1234567890123456"));
  EXPECT_FALSE(accepts(n, "12345678901234567"));  // 17 integer digits
  EXPECT_FALSE(accepts(n, "1e100"));              // 3 exponent digits
  EXPECT_FALSE(accepts(n, "1."));
  EXPECT_FALSE(accepts(n, ".5"));
  EXPECT_FALSE(accepts(n, "+1"));
}

TEST(JsonSchemaCompiler, EnumConstAnyOfAndTypeLists) {
  const Grammar g = compile(R"({"type":"object","properties":{
      "color":{"enum":["red","green",3,null]},
      "kind":{"const":"fixed"},
      "v":{"anyOf":[{"type":"integer"},{"type":"array","items":{"type":"string"}}]},
      "maybe":{"type":["string","null"]}},
      "required":["color","kind","v","maybe"],"additionalProperties":false})");
  EXPECT_TRUE(accepts(g, R"({"color":"red","kind":"fixed","v":4,"maybe":null})"));
  EXPECT_TRUE(accepts(g, R"({"color":3,"kind":"fixed","v":["a", "b"],"maybe":"x"})"));
  EXPECT_FALSE(accepts(g, R"({"color":"blue","kind":"fixed","v":4,"maybe":null})"));
  EXPECT_FALSE(accepts(g, R"({"color":null,"kind":"other","v":4,"maybe":null})"));
  EXPECT_FALSE(accepts(g, R"({"color":null,"kind":"fixed","v":true,"maybe":null})"));
}

TEST(JsonSchemaCompiler, ArraysHonourMinAndMaxItems) {
  const Grammar g =
      compile(R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})");
  EXPECT_FALSE(accepts(g, "[]"));
  EXPECT_TRUE(accepts(g, "[1]"));
  EXPECT_TRUE(accepts(g, "[1, 2,3]"));
  EXPECT_FALSE(accepts(g, "[1,2,3,4]"));
  const Grammar any = compile(R"({"type":"array"})");
  EXPECT_TRUE(accepts(any, R"([1,"a",{"b":[null]},[]])"));
}

TEST(JsonSchemaCompiler, RefsAndRecursion) {
  const Grammar g = compile(R"({"$defs":{"node":{"type":"object","properties":{
      "v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},
      "required":["v","kids"],"additionalProperties":false}},"$ref":"#/$defs/node"})");
  EXPECT_TRUE(
      accepts(g, R"({"v":1,"kids":[{"v":2,"kids":[]},{"v":3,"kids":[{"v":4,"kids":[]}]}]})"));
  EXPECT_FALSE(accepts(g, R"({"v":1,"kids":[{"v":2}]})"));
}

TEST(JsonSchemaCompiler, AnyObjectGrammar) {
  const Grammar g = any_json_object_grammar();
  EXPECT_TRUE(accepts(g, R"({})"));
  EXPECT_TRUE(accepts(g, R"({"a":[1,{"b":"c"}],"d":null})"));
  EXPECT_FALSE(accepts(g, R"([])"));
  EXPECT_FALSE(accepts(g, R"("x")"));
  // Nesting is bounded: kMaxAnyDepth levels of objects and arrays are fine, more are not.
  std::string deep, deeper;
  for (int i = 0; i < kMaxAnyDepth; ++i) deep += i == 0 ? "{\"a\":" : "[";
  std::string close_deep;
  for (int i = 1; i < kMaxAnyDepth; ++i) close_deep += "]";
  EXPECT_TRUE(accepts(g, deep + "1" + close_deep + "}"));
  EXPECT_FALSE(is_prefix(g, deep + "["));
}

// Each refused schema: the error names the parameter, the keyword and where it is.
TEST(JsonSchemaCompiler, RefusesUnsupportedKeywordsByName) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type":"string","pattern":"^a"})", "pattern"},
      {R"({"type":"string","format":"date"})", "format"},
      {R"({"type":"string","maxLength":3})", "maxLength"},
      {R"({"type":"integer","minimum":3})", "minimum"},
      {R"({"oneOf":[{"type":"string"}]})", "oneOf"},
      {R"({"allOf":[{"type":"string"}]})", "allOf"},
      {R"({"type":"object","properties":{"x":{"not":{}}}})", "/properties/x"},
      {R"({"type":"array","items":[{"type":"string"}]})", "tuples"},
      {R"({"type":"array","maxItems":1000})", "maxItems"},
      {R"({"type":"wat"})", "wat"},
      {R"({"$ref":"http://x/y"})", "local"},
      {R"({"$ref":"#/$defs/missing"})", "missing"},
      {R"({"$ref":"#"})", "recurses"},
      {R"({"enum":[]})", "enum"},
      {R"(false)", "false"},
      {R"(3)", "object or a boolean"},
  };
  for (const auto& [schema, needle] : cases) {
    try {
      compile(schema);
      ADD_FAILURE() << "accepted " << schema;
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(e.param(), "response_format");
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << schema << " -> " << e.what();
    }
  }
}

TEST(JsonSchemaCompiler, DeepSchemaNestingIsRefused) {
  json s = {{"type", "string"}};
  for (int i = 0; i < kMaxSchemaDepth + 5; ++i) s = {{"type", "array"}, {"items", s}};
  EXPECT_THROW(compile_json_schema(s, "response_format"), InvalidArgument);
  json ok = {{"type", "string"}};
  for (int i = 0; i < 10; ++i) ok = {{"type", "array"}, {"items", ok}};
  EXPECT_NO_THROW(compile_json_schema(ok, "response_format"));
}

TEST(JsonSchemaCompiler, AnnotationsAreIgnored) {
  const Grammar g = compile(R"({"title":"T","description":"d","$schema":"x","type":"boolean",
      "default":true,"examples":[false]})");
  EXPECT_TRUE(accepts(g, "true"));
  EXPECT_FALSE(accepts(g, "1"));
}

}  // namespace
}  // namespace herd::grammar

namespace herd::grammar {
namespace {

// 2^14 ways to expand the same integer: the matcher caps the stacks instead of enumerating them.
TEST(JsonSchemaCompiler, NestedAlternativesDoNotExplode) {
  nlohmann::ordered_json s;
  s["$defs"]["d0"] = {{"type", "integer"}};
  for (int i = 1; i <= 14; ++i) {
    const std::string prev = std::string("#/$defs/d").append(std::to_string(i - 1));
    s["$defs"][std::string("d").append(std::to_string(i))] = {
        {"anyOf", nlohmann::ordered_json::array({{{"$ref", prev}}, {{"$ref", prev}}})}};
  }
  s["$ref"] = "#/$defs/d14";
  const Grammar g = compile_json_schema(s, "response_format");
  StackSet st = initial_state(g);
  EXPECT_LE(st.size(), kMaxStacks);
  EXPECT_TRUE(advance_bytes(g, st, "12"));
  EXPECT_TRUE(is_complete(st));
}

}  // namespace
}  // namespace herd::grammar
