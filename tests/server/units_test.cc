// Pure functions and small classes of the server: request parsing, auth, log lines, metrics
// text, the elastic task queue.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/common/error.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/request_log.h"

namespace herd::server {
namespace {

using nlohmann::json;

TEST(OpenAIRequest, ChatDefaultsAndMaxTokensAlias) {
  auto r = parse_chat_request({{"messages", json::array({{{"role", "user"}, {"content", "a"}}})},
                               {"max_tokens", 9},
                               {"temperature", nullptr}});
  EXPECT_EQ(r.params.max_tokens, 9);
  EXPECT_DOUBLE_EQ(r.params.temperature, 1.0);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.parse_tool_calls);
  auto r2 =
      parse_chat_request({{"messages", json::array({{{"role", "developer"}, {"content", "a"}}})},
                          {"max_tokens", 9},
                          {"max_completion_tokens", 4}});
  EXPECT_EQ(r2.params.max_tokens, 4);
  EXPECT_EQ(r2.messages[0].role, "system");
}

TEST(OpenAIRequest, ErrorsNameTheField) {
  auto param_of = [](const json& body) -> std::string {
    try {
      parse_chat_request(body);
    } catch (const InvalidArgument& e) {
      return e.param();
    }
    return "<none>";
  };
  json msgs = json::array({{{"role", "user"}, {"content", "a"}}});
  EXPECT_EQ(param_of({{"messages", msgs}, {"top_p", 1.5}}), "top_p");
  EXPECT_EQ(param_of({{"messages", msgs}, {"seed", "x"}}), "seed");
  EXPECT_EQ(param_of({{"messages", msgs}, {"logit_bias", {{"12", "big"}}}}), "logit_bias");
  EXPECT_EQ(param_of({{"messages", msgs}, {"logit_bias", {{"12", 101}}}}), "logit_bias");
  EXPECT_EQ(param_of({{"messages", msgs}, {"tools", json::array({1})}}), "tools");
  EXPECT_EQ(param_of({{"messages",
                       json::array({{{"role", "user"},
                                     {"content", json::array({{{"type", "image_url"}}})}}})}}),
            "messages");
  EXPECT_EQ(param_of(json::array()), "");
  EXPECT_EQ(param_of({{"messages", msgs}}), "<none>");
}

TEST(OpenAIRequest, CompletionPromptShapes) {
  auto r = parse_completion_request({{"prompt", json::array({"a", json::array({1, 2})})}});
  ASSERT_EQ(r.prompts.size(), 2u);
  EXPECT_TRUE(r.prompts[0].is_text);
  EXPECT_FALSE(r.prompts[1].is_text);
  EXPECT_EQ(r.prompts[1].ids, (std::vector<int32_t>{1, 2}));
  EXPECT_THROW(parse_completion_request({{"prompt", json::array()}}), InvalidArgument);
  EXPECT_THROW(parse_completion_request({{"prompt", "a"}, {"suffix", "b"}}), InvalidArgument);
}

// The key comparison visits every byte (no early exit): whichever byte differs, and whatever
// the length, the answer is the same "no".
TEST(Auth, EveryOneByteDifferenceIsRejected) {
  const std::string key = "sk-0123456789abcdef0123456789abcdef";
  ASSERT_TRUE(bearer_matches("Bearer " + key, key));
  for (size_t i = 0; i < key.size(); ++i) {
    std::string t = key;
    t[i] ^= 1;
    EXPECT_FALSE(bearer_matches("Bearer " + t, key)) << i;
    EXPECT_FALSE(bearer_matches("Bearer " + key.substr(0, i), key)) << i;
  }
  EXPECT_FALSE(bearer_matches("Bearer " + key + key, key));
  EXPECT_FALSE(bearer_matches("Bearer " + key + "x", key));
}

TEST(Auth, BearerMatching) {
  EXPECT_TRUE(bearer_matches("Bearer k3y", "k3y"));
  EXPECT_TRUE(bearer_matches("bearer  k3y ", "k3y"));
  EXPECT_FALSE(bearer_matches("Bearer k3", "k3y"));
  EXPECT_FALSE(bearer_matches("Bearer k3yy", "k3y"));
  EXPECT_FALSE(bearer_matches("Basic k3y", "k3y"));
  EXPECT_FALSE(bearer_matches("", "k3y"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
  EXPECT_TRUE(route_is_public("/health", false));
  EXPECT_FALSE(route_is_public("/metrics", false));
  EXPECT_TRUE(route_is_public("/metrics", true));
}

TEST(RequestLog, OneJsonLinePerRequest) {
  RequestLogEntry e;
  e.id = "chatcmpl-1";
  e.method = "POST";
  e.path = "/v1/chat/completions";
  e.status = 200;
  e.prompt_tokens = 12;
  e.completion_tokens = 5;
  e.ttft_s = 0.0125;
  e.total_s = 0.5;
  e.finish_reason = "stop";
  std::string line = format_request_log_line(e);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  json j = json::parse(line);
  EXPECT_EQ(j["id"], "chatcmpl-1");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["prompt_tokens"], 12);
  EXPECT_EQ(j["completion_tokens"], 5);
  EXPECT_DOUBLE_EQ(j["ttft_ms"].get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(j["total_ms"].get<double>(), 500.0);
  EXPECT_EQ(j["finish_reason"], "stop");
}

TEST(Metrics, HistogramIsCumulative) {
  Histogram h({1.0, 2.0});
  h.observe(0.5);
  h.observe(1.5);
  h.observe(1.5);
  h.observe(9.0);
  std::string out;
  h.render(out, "x", "help", "a=\"b\"");
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"2\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("x_bucket{a=\"b\",le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(out.find("x_sum{a=\"b\"} 12.5\n"), std::string::npos);
  EXPECT_NE(out.find("x_count{a=\"b\"} 4\n"), std::string::npos);
  EXPECT_EQ(prometheus_label_escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
}

}  // namespace
}  // namespace herd::server
