// /v1/chat/completions over a real loopback socket against the FakeEngine.
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

namespace herd::testing {
namespace {

json chat_body(json extra = json::object()) {
  json b = {{"model", "fake-model"},
            {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

TEST_F(ServerTest, ChatNonStreamingReturnsReplyAndUsage) {
  start();
  auto res = post("/v1/chat/completions", chat_body());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  json b = json::parse(res->body);
  EXPECT_EQ(b["object"], "chat.completion");
  EXPECT_EQ(b["model"], "fake-model");
  EXPECT_EQ(b["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(b["choices"].size(), 1u);
  EXPECT_EQ(b["choices"][0]["index"], 0);
  EXPECT_EQ(b["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(b["choices"][0]["message"]["content"], "Hello from sample 0!");
  EXPECT_EQ(b["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(b["choices"][0]["logprobs"].is_null());
  // The engine saw the Llama 3.1 chat prompt, tokenized with special tokens.
  auto reqs = engine_->received();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].prompt_ids.front(), FakeTokenizer::kBos);
  EXPECT_EQ(b["usage"]["prompt_tokens"], reqs[0].prompt_ids.size());
  EXPECT_EQ(b["usage"]["completion_tokens"], std::string("Hello from sample 0!").size());
  EXPECT_EQ(b["usage"]["total_tokens"],
            b["usage"]["prompt_tokens"].get<int>() + b["usage"]["completion_tokens"].get<int>());
}

TEST_F(ServerTest, ChatSamplingFieldsReachTheEngine) {
  start();
  auto res = post("/v1/chat/completions", chat_body({{"temperature", 0.5},
                                                     {"top_p", 0.9},
                                                     {"seed", 7},
                                                     {"stop", "x"},
                                                     {"presence_penalty", 0.5},
                                                     {"frequency_penalty", -0.5},
                                                     {"logit_bias", {{"65", 10}}},
                                                     {"max_completion_tokens", 5},
                                                     {"user", "someone"},
                                                     {"unknown_field", {1, 2, 3}}}));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto p = engine_->received().at(0).params;
  EXPECT_DOUBLE_EQ(p.temperature, 0.5);
  EXPECT_DOUBLE_EQ(p.top_p, 0.9);
  EXPECT_EQ(p.seed, 7u);
  EXPECT_EQ(p.stop, std::vector<std::string>{"x"});
  EXPECT_DOUBLE_EQ(p.presence_penalty, 0.5);
  EXPECT_DOUBLE_EQ(p.frequency_penalty, -0.5);
  ASSERT_EQ(p.logit_bias.size(), 1u);
  EXPECT_EQ(p.logit_bias[0].first, 65);
  EXPECT_FLOAT_EQ(p.logit_bias[0].second, 10.0f);
  EXPECT_EQ(p.max_tokens, 5);
  json b = json::parse(res->body);
  EXPECT_EQ(b["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(b["choices"][0]["finish_reason"], "length");
}

TEST_F(ServerTest, ChatContentPartsAreJoined) {
  start();
  json msgs = json::array({{{"role", "system"}, {"content", "Be brief."}},
                           {{"role", "user"},
                            {"content", json::array({{{"type", "text"}, {"text", "alpha"}},
                                                     {{"type", "text"}, {"text", "beta"}}})}}});
  auto res = post("/v1/chat/completions", {{"messages", msgs}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto ids = engine_->received().at(0).prompt_ids;
  std::string prompt = FakeTokenizer().decode(ids);
  EXPECT_NE(prompt.find("Be brief."), std::string::npos);
  EXPECT_NE(prompt.find("alpha"), std::string::npos);
  EXPECT_NE(prompt.find("beta"), std::string::npos);
}

TEST_F(ServerTest, ChatStreamFramesExactlyLikeOpenAI) {
  start();
  auto res = post("/v1/chat/completions", chat_body({{"stream", true}}));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  auto events = sse_payloads(res->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  json first = json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));
  std::string content;
  std::string id = first["id"];
  for (size_t i = 1; i + 2 < events.size(); ++i) {
    json c = json::parse(events[i]);
    EXPECT_EQ(c["id"], id);
    EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
    ASSERT_EQ(c["choices"][0]["delta"].size(), 1u) << events[i];
    content += c["choices"][0]["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(content, "Hello from sample 0!");
  json fin = json::parse(events[events.size() - 2]);
  EXPECT_EQ(fin["choices"][0]["delta"], json::object());
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "stop");
}

TEST_F(ServerTest, ChatStreamIncludeUsage) {
  start();
  auto res = post("/v1/chat/completions",
                  chat_body({{"stream", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  auto events = sse_payloads(res->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json c = json::parse(events[i]);
    ASSERT_TRUE(c.contains("usage")) << events[i];
    EXPECT_TRUE(c["usage"].is_null());
  }
  json u = json::parse(events[events.size() - 2]);
  EXPECT_EQ(u["choices"], json::array());
  EXPECT_EQ(u["usage"]["completion_tokens"], std::string("Hello from sample 0!").size());
  EXPECT_EQ(u["usage"]["prompt_tokens"], engine_->received().at(0).prompt_ids.size());
}

TEST_F(ServerTest, ChatStreamOptionsWithoutStreamIs400) {
  start();
  auto res =
      post("/v1/chat/completions", chat_body({{"stream_options", {{"include_usage", true}}}}));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "stream_options");
}

TEST_F(ServerTest, ChatNEqualsThree) {
  start();
  auto res = post("/v1/chat/completions", chat_body({{"n", 3}}));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json b = json::parse(res->body);
  ASSERT_EQ(b["choices"].size(), 3u);
  int total = 0;
  for (int i = 0; i < 3; ++i) {
    std::string expect = "Hello from sample " + std::to_string(i) + "!";
    EXPECT_EQ(b["choices"][i]["index"], i);
    EXPECT_EQ(b["choices"][i]["message"]["content"], expect);
    total += static_cast<int>(expect.size());
  }
  EXPECT_EQ(b["usage"]["completion_tokens"], total);

  auto s = post("/v1/chat/completions", chat_body({{"n", 3}, {"stream", true}}));
  ASSERT_TRUE(s);
  auto events = sse_payloads(s->body);
  std::vector<std::string> content(3);
  std::vector<int> roles(3, 0), finishes(3, 0);
  for (const auto& e : events) {
    if (e == "[DONE]") continue;
    json c = json::parse(e);
    ASSERT_EQ(c["choices"].size(), 1u);
    int i = c["choices"][0]["index"];
    const json& d = c["choices"][0]["delta"];
    if (d.contains("role")) {
      EXPECT_EQ(content[i], "") << "role delta must come first";
      ++roles[i];
    } else if (d.contains("content")) {
      content[i] += d["content"].get<std::string>();
    }
    if (!c["choices"][0]["finish_reason"].is_null()) ++finishes[i];
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(content[i], "Hello from sample " + std::to_string(i) + "!");
    EXPECT_EQ(roles[i], 1);
    EXPECT_EQ(finishes[i], 1);
  }
}

TEST_F(ServerTest, ChatLogprobs) {
  start();
  auto res = post("/v1/chat/completions",
                  chat_body({{"logprobs", true}, {"top_logprobs", 2}, {"max_tokens", 4}}));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json lp = json::parse(res->body)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(lp.size(), 4u);
  std::string text = "Hell";
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(lp[i]["token"], std::string(1, text[i]));
    EXPECT_EQ(lp[i]["bytes"], json::array({static_cast<int>(text[i])}));
    EXPECT_FLOAT_EQ(lp[i]["logprob"].get<float>(), -0.5f);
    ASSERT_EQ(lp[i]["top_logprobs"].size(), 2u);
  }
  EXPECT_EQ(engine_->received().at(0).params.logprobs, 2);

  auto bad = post("/v1/chat/completions", chat_body({{"top_logprobs", 2}}));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "top_logprobs");
}

const json kWeatherTools = json::array(
    {{{"type", "function"},
      {"function",
       {{"name", "get_weather"},
        {"description", "Weather in a city"},
        {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}}});

TEST_F(ServerTest, ChatToolCallsAreParsed) {
  start();
  engine_->set_reply([](const Request&, int) {
    return std::string(R"({"name": "get_weather", "parameters": {"city": "Paris"}})");
  });
  auto res = post("/v1/chat/completions", chat_body({{"tools", kWeatherTools}}));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json b = json::parse(res->body);
  const json& msg = b["choices"][0]["message"];
  EXPECT_TRUE(msg["content"].is_null());
  ASSERT_EQ(msg["tool_calls"].size(), 1u);
  const json& call = msg["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(call["function"]["name"], "get_weather");
  ASSERT_TRUE(call["function"]["arguments"].is_string());
  EXPECT_EQ(json::parse(call["function"]["arguments"].get<std::string>()),
            json({{"city", "Paris"}}));
  EXPECT_EQ(b["choices"][0]["finish_reason"], "tool_calls");
  // The tool definitions reached the prompt.
  std::string prompt = FakeTokenizer().decode(engine_->received().at(0).prompt_ids);
  EXPECT_NE(prompt.find("get_weather"), std::string::npos);
}

TEST_F(ServerTest, ChatToolCallsStream) {
  start();
  engine_->set_reply([](const Request&, int) {
    return std::string(R"({"name": "get_weather", "parameters": {"city": "Oslo"}})");
  });
  auto res = post("/v1/chat/completions", chat_body({{"tools", kWeatherTools}, {"stream", true}}));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  auto events = sse_payloads(res->body);
  ASSERT_EQ(events.size(), 4u) << res->body;  // role, tool_calls, finish, [DONE]
  json tc = json::parse(events[1])["choices"][0]["delta"]["tool_calls"];
  ASSERT_EQ(tc.size(), 1u);
  EXPECT_EQ(tc[0]["index"], 0);
  EXPECT_EQ(tc[0]["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_EQ(tc[0]["type"], "function");
  EXPECT_EQ(tc[0]["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(tc[0]["function"]["arguments"].get<std::string>()),
            json({{"city", "Oslo"}}));
  EXPECT_EQ(json::parse(events[2])["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(events[3], "[DONE]");
}

TEST_F(ServerTest, ChatWithToolsButPlainReplyStreamsContent) {
  start();
  auto res = post("/v1/chat/completions", chat_body({{"tools", kWeatherTools}, {"stream", true}}));
  ASSERT_TRUE(res);
  std::string content;
  for (const auto& e : sse_payloads(res->body)) {
    if (e == "[DONE]") continue;
    json d = json::parse(e)["choices"][0]["delta"];
    if (d.contains("content")) content += d["content"].get<std::string>();
    EXPECT_FALSE(d.contains("tool_calls"));
  }
  EXPECT_EQ(content, "Hello from sample 0!");
}

TEST_F(ServerTest, ChatToolChoiceNoneDoesNotParse) {
  start();
  engine_->set_reply([](const Request&, int) {
    return std::string(R"({"name": "get_weather", "parameters": {}})");
  });
  auto res =
      post("/v1/chat/completions", chat_body({{"tools", kWeatherTools}, {"tool_choice", "none"}}));
  ASSERT_TRUE(res);
  json b = json::parse(res->body);
  EXPECT_FALSE(b["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(b["choices"][0]["finish_reason"], "stop");
  auto bad =
      post("/v1/chat/completions",
           chat_body({{"tools", kWeatherTools},
                      {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}}));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "tool_choice");
}

TEST_F(ServerTest, ChatAssistantToolHistoryIsAccepted) {
  start();
  json msgs = json::array(
      {{{"role", "user"}, {"content", "Weather in Paris?"}},
       {{"role", "assistant"},
        {"content", nullptr},
        {"tool_calls",
         json::array(
             {{{"id", "call_1"},
               {"type", "function"},
               {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Paris\"}"}}}}})}},
       {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny, 24C"}}});
  auto res = post("/v1/chat/completions", {{"messages", msgs}, {"tools", kWeatherTools}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  std::string prompt = FakeTokenizer().decode(engine_->received().at(0).prompt_ids);
  EXPECT_NE(prompt.find("sunny, 24C"), std::string::npos);
}

}  // namespace
}  // namespace herd::testing
