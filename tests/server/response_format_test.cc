// response_format and forced tool calls -> the engine's ResponseFormat (the schema itself is
// compiled and checked by the engine, tests/grammar and tests/api).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/common/error.h"
#include "server/openai_request.h"

namespace herd::server {
namespace {

using nlohmann::json;

json chat(json extra) {
  json b = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  b.update(extra);
  return b;
}

const json kTools = json::parse(R"([
  {"type":"function","function":{"name":"a","parameters":{"type":"object","properties":{"z":{"type":"integer"},"y":{"type":"boolean"}}}}},
  {"type":"function","function":{"name":"b"}}])");

TEST(ResponseFormat, ParsesTheThreeTypes) {
  EXPECT_EQ(parse_chat_request(chat(json::object())).params.response_format.type,
            ResponseFormat::Type::kText);
  EXPECT_EQ(parse_chat_request(chat({{"response_format", {{"type", "text"}}}}))
                .params.response_format.type,
            ResponseFormat::Type::kText);
  EXPECT_EQ(parse_chat_request(chat({{"response_format", {{"type", "json_object"}}}}))
                .params.response_format.type,
            ResponseFormat::Type::kJsonObject);
  const auto r = parse_chat_request(chat(json::parse(
      R"({"response_format":{"type":"json_schema","json_schema":{"name":"x","strict":true,"schema":{"type":"integer"}}}})")));
  EXPECT_EQ(r.params.response_format.type, ResponseFormat::Type::kJsonSchema);
  EXPECT_EQ(json::parse(r.params.response_format.schema), json({{"type", "integer"}}));
  EXPECT_EQ(r.params.response_format.param, "response_format");
}

TEST(ResponseFormat, MalformedFormatsAreRefusedNamingTheField) {
  for (const char* bad :
       {R"({"response_format":"json"})", R"({"response_format":{"type":"xml"}})",
        R"({"response_format":{"type":"json_schema"}})",
        R"({"response_format":{"type":"json_schema","json_schema":{"strict":1}}})"}) {
    try {
      parse_chat_request(chat(json::parse(bad)));
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(e.param(), "response_format") << bad;
    }
  }
  EXPECT_THROW(
      parse_completion_request(json::parse(R"({"prompt":"x","response_format":{"type":"nope"}})")),
      InvalidArgument);
}

TEST(ResponseFormat, ForcedToolCallsBecomeASchema) {
  const auto req = parse_chat_request(chat({{"tools", kTools}, {"tool_choice", "required"}}));
  const ResponseFormat& f = req.params.response_format;
  EXPECT_EQ(f.type, ResponseFormat::Type::kJsonSchema);
  EXPECT_EQ(f.param, "tools");
  const json s = json::parse(f.schema);
  ASSERT_EQ(s["anyOf"].size(), 2u);
  EXPECT_EQ(s["anyOf"][0]["properties"]["name"]["const"], "a");
  EXPECT_EQ(s["anyOf"][1]["properties"]["parameters"], json({{"type", "object"}}));
  EXPECT_EQ(s["anyOf"][0]["required"], json({"name", "parameters"}));

  const auto named = parse_chat_request(chat(
      {{"tools", kTools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "b"}}}}}}));
  EXPECT_EQ(json::parse(named.params.response_format.schema)["properties"]["name"]["const"], "b");
  // "auto" leaves the choice to the model: nothing is forced.
  EXPECT_EQ(parse_chat_request(chat({{"tools", kTools}, {"tool_choice", "auto"}}))
                .params.response_format.type,
            ResponseFormat::Type::kText);
  EXPECT_THROW(parse_chat_request(chat({{"tools", kTools},
                                        {"tool_choice", "required"},
                                        {"response_format", {{"type", "json_object"}}}})),
               InvalidArgument);
}

TEST(ResponseFormat, KeepsTheBodysKeyOrder) {
  const std::string body =
      R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema",)"
      R"("json_schema":{"name":"x","schema":{"type":"object","properties":{"z":{},"a":{}}}}}})";
  auto r = parse_chat_request(json::parse(body));
  EXPECT_LT(r.params.response_format.schema.find("\"a\""),
            r.params.response_format.schema.find("\"z\""));
  keep_schema_key_order(body, r.params, r.tools);
  EXPECT_GT(r.params.response_format.schema.find("\"a\""),
            r.params.response_format.schema.find("\"z\""));

  // Written by hand: a json value would already have sorted "z" after "y".
  const std::string tool_body =
      R"({"messages":[{"role":"user","content":"hi"}],"tool_choice":"required","tools":[)"
      R"({"type":"function","function":{"name":"a","parameters":{"type":"object",)"
      R"("properties":{"z":{"type":"integer"},"y":{"type":"boolean"}}}}}]})";
  auto t = parse_chat_request(json::parse(tool_body));
  keep_schema_key_order(tool_body, t.params, t.tools);
  const std::string& s = t.params.response_format.schema;
  EXPECT_LT(s.find("\"z\""), s.find("\"y\"")) << s;  // parameters in the body's order
  EXPECT_LT(s.find("\"name\""), s.find("\"parameters\"")) << s;
}

}  // namespace
}  // namespace herd::server
