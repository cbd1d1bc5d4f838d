// parse_llama31_tool_calls: Meta's JSON tool-call replies, several calls, and junk that must
// give nullopt without throwing.
#include <gtest/gtest.h>

#include <random>

#include "engine/tokenizer/chat_format.h"

namespace herd {
namespace {

TEST(ToolCallParse, SingleCall) {
  auto r = parse_llama31_tool_calls(
      R"({"name": "get_current_conditions", "parameters": {"location": "San Francisco, CA", "unit": "Fahrenheit"}})",
      "req-1");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "get_current_conditions");
  EXPECT_EQ(nlohmann::json::parse((*r)[0].arguments),
            nlohmann::json::parse(R"({"location": "San Francisco, CA", "unit": "Fahrenheit"})"));
  EXPECT_EQ((*r)[0].id.rfind("call_", 0), 0u);
  EXPECT_EQ((*r)[0].id.size(), 5u + 24u);
}

TEST(ToolCallParse, PythonTagAndEndTokens) {
  auto r = parse_llama31_tool_calls(
      "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"x\": 1}}<|eom_id|>", "s");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].name, "f");
  EXPECT_EQ((*r)[0].arguments, "{\"x\":1}");
}

TEST(ToolCallParse, SeveralCallsSeparatedBySemicolons) {
  auto r = parse_llama31_tool_calls(
      R"({"name": "a", "parameters": {"s": "x;y"}}; {"name": "b", "arguments": {}})", "seed");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, "a");
  EXPECT_EQ(nlohmann::json::parse((*r)[0].arguments)["s"], "x;y");
  EXPECT_EQ((*r)[1].name, "b");
  EXPECT_EQ((*r)[1].arguments, "{}");
  EXPECT_NE((*r)[0].id, (*r)[1].id);
  // Ids depend on the seed, and are stable for a given seed.
  auto again = parse_llama31_tool_calls(R"({"name": "a", "parameters": {}})", "seed");
  auto other = parse_llama31_tool_calls(R"({"name": "a", "parameters": {}})", "seed2");
  EXPECT_EQ((*again)[0].id, (*r)[0].id);
  EXPECT_NE((*other)[0].id, (*r)[0].id);
}

TEST(ToolCallParse, NotToolCalls) {
  for (const char* t :
       {"", "The weather is sunny.", "{", "{\"name\": 3}", "{\"foo\": \"bar\"}",
        "{\"name\": \"f\", \"parameters\": [1]}", "{\"name\": \"f\"} trailing text",
        "Sure! {\"name\": \"f\", \"parameters\": {}}", "[]", "{\"name\": \"\"}", "\xFF\xFE{"}) {
    EXPECT_FALSE(parse_llama31_tool_calls(t, "s")) << t;
  }
}

TEST(ToolCallParse, FuzzNeverThrows) {
  std::mt19937 rng(42);
  const std::string alphabet = "{}[]\";:,\\ namepartrs0123456789<|>_\xC3\xA9\xFF";
  const std::string seedcall = R"({"name": "f", "parameters": {"a": [1, {"b": "c"}]}})";
  int parsed = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string s;
    if (i % 2) {
      s = seedcall;  // mutate a real call
      for (int k = 0; k < 3; ++k) s[rng() % s.size()] = alphabet[rng() % alphabet.size()];
    } else {
      size_t n = rng() % 80;
      for (size_t k = 0; k < n; ++k) s += alphabet[rng() % alphabet.size()];
    }
    std::optional<std::vector<ChatToolCall>> r;
    EXPECT_NO_THROW(r = parse_llama31_tool_calls(s, "fuzz"));
    if (r) {
      ++parsed;
      for (const auto& c : *r) {
        EXPECT_FALSE(c.name.empty());
        EXPECT_TRUE(nlohmann::json::parse(c.arguments, nullptr, false).is_object());
      }
    }
  }
  EXPECT_GT(parsed, 0);
  // Deep nesting is refused before the recursive parser sees it.
  std::string deep = "{\"name\": \"f\", \"parameters\": " + std::string(100000, '[');
  EXPECT_FALSE(parse_llama31_tool_calls(deep, "s"));
}

}  // namespace
}  // namespace herd
