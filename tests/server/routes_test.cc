// Models, health, metrics, tokenize/detokenize, auth and every error status.
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

namespace herd::testing {
namespace {

void expect_openai_error(const httplib::Result& res, int status, const std::string& param) {
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, status) << res->body;
  json b = json::parse(res->body);
  ASSERT_TRUE(b.contains("error")) << res->body;
  const json& e = b["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_FALSE(e["message"].get<std::string>().empty());
  EXPECT_TRUE(e["type"].is_string());
  if (param.empty())
    EXPECT_TRUE(e["param"].is_null()) << res->body;
  else
    EXPECT_EQ(e["param"], param) << res->body;
  EXPECT_TRUE(e.contains("code"));
  // Never a source path or a stack trace.
  EXPECT_EQ(res->body.find(HERD_SOURCE_DIR), std::string::npos);
  EXPECT_EQ(res->body.find(".cc"), std::string::npos);
}

TEST_F(ServerTest, ModelsListsServedModel) {
  start();
  auto c = http();
  auto res = c.Get("/v1/models");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  json b = json::parse(res->body);
  EXPECT_EQ(b["object"], "list");
  ASSERT_EQ(b["data"].size(), 1u);
  EXPECT_EQ(b["data"][0]["id"], "fake-model");
  EXPECT_EQ(b["data"][0]["object"], "model");
  EXPECT_EQ(b["data"][0]["max_model_len"], 4096);
}

// Item 16: the openai clients' models.retrieve(id).
TEST_F(ServerTest, ModelsRetrieveById) {
  start();
  auto c = http();
  auto res = c.Get("/v1/models/fake-model");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json m = json::parse(res->body);
  EXPECT_EQ(m["id"], "fake-model");
  EXPECT_EQ(m["object"], "model");
  EXPECT_EQ(m["owned_by"], "herd");
  auto other = c.Get("/v1/models/other");
  expect_openai_error(other, 404, "model");
  EXPECT_EQ(json::parse(other->body)["error"]["code"], "model_not_found");
}

TEST_F(ServerTest, HealthIs200) {
  start();
  auto c = http();
  auto res = c.Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(ServerTest, TokenizeAndDetokenize) {
  start();
  auto res = post("/tokenize", {{"prompt", "hi"}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json b = json::parse(res->body);
  EXPECT_EQ(b["tokens"], json::array({FakeTokenizer::kBos, 'h', 'i'}));
  EXPECT_EQ(b["count"], 3);
  EXPECT_EQ(b["max_model_len"], 4096);

  auto no_bos = post(
      "/tokenize", {{"prompt", "hi"}, {"add_special_tokens", false}, {"return_token_strs", true}});
  json nb = json::parse(no_bos->body);
  EXPECT_EQ(nb["tokens"], json::array({'h', 'i'}));
  EXPECT_EQ(nb["token_strs"], json::array({"h", "i"}));

  auto chat =
      post("/tokenize", {{"messages", json::array({{{"role", "user"}, {"content", "yo"}}})}});
  ASSERT_EQ(chat->status, 200) << chat->body;
  json cb = json::parse(chat->body);
  EXPECT_EQ(cb["tokens"][0], FakeTokenizer::kBos);  // from the chat format, not doubled
  EXPECT_NE(cb["tokens"][1], FakeTokenizer::kBos);

  auto de = post("/detokenize", {{"tokens", json::array({'h', 'i'})}});
  ASSERT_TRUE(de);
  ASSERT_EQ(de->status, 200);
  EXPECT_EQ(json::parse(de->body)["prompt"], "hi");

  expect_openai_error(post("/detokenize", {{"tokens", json::array({100000})}}), 400, "tokens");
  expect_openai_error(post("/detokenize", {{"tokens", "x"}}), 400, "tokens");
}

TEST_F(ServerTest, ErrorsName400Param) {
  start();
  json msgs = json::array({{{"role", "user"}, {"content", "Hi"}}});
  expect_openai_error(post("/v1/chat/completions", {{"messages", msgs}, {"temperature", "hot"}}),
                      400, "temperature");
  expect_openai_error(post("/v1/chat/completions", {{"messages", msgs}, {"temperature", 5}}), 400,
                      "temperature");
  expect_openai_error(post("/v1/chat/completions", json::object()), 400, "messages");
  expect_openai_error(post("/v1/chat/completions", {{"messages", "hi"}}), 400, "messages");
  expect_openai_error(post("/v1/chat/completions",
                           {{"messages", json::array({{{"role", "wizard"}, {"content", "x"}}})}}),
                      400, "messages[0].role");
  expect_openai_error(
      post("/v1/chat/completions", {{"messages", msgs}, {"logit_bias", {{"abc", 1}}}}), 400,
      "logit_bias");
  expect_openai_error(post("/v1/chat/completions", {{"messages", msgs}, {"n", 0}}), 400, "n");
  expect_openai_error(post("/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 1.5}}), 400,
                      "max_tokens");
  expect_openai_error(post("/v1/chat/completions", {{"messages", msgs}, {"stop", 3}}), 400, "stop");
  expect_openai_error(post("/v1/chat/completions", {{"messages", msgs}, {"stream", "yes"}}), 400,
                      "stream");
  expect_openai_error(post("/v1/completions", {{"prompt", 3}}), 400, "prompt");
  expect_openai_error(post("/v1/completions", {{"prompt", json::array({-1})}}), 400, "prompt");
  expect_openai_error(post("/v1/completions", {{"prompt", json::array({999999})}}), 400, "prompt");
  // Checked by the engine's own validation (engine/sample), mapped to 400 with its param.
  expect_openai_error(
      post("/v1/chat/completions", {{"messages", msgs}, {"stop_token_ids", json::array({999999})}}),
      400, "stop_token_ids");
  // Not JSON at all.
  auto c = http();
  auto res = c.Post("/v1/chat/completions", "{not json", "application/json");
  expect_openai_error(res, 400, "");
  EXPECT_TRUE(engine_->received().empty());
}

TEST_F(ServerTest, PromptLongerThanContextIs400NamingLengths) {
  FakeEngineOptions eo;
  eo.max_model_len = 32;
  start({}, eo);
  auto res = post("/v1/completions", {{"prompt", std::string(40, 'a')}});
  expect_openai_error(res, 400, "prompt");
  std::string msg = json::parse(res->body)["error"]["message"];
  EXPECT_NE(msg.find("32"), std::string::npos) << msg;
  EXPECT_NE(msg.find("41"), std::string::npos) << msg;  // BOS + 40 bytes

  auto res2 = post("/v1/completions", {{"prompt", "abc"}, {"max_tokens", 30}});
  expect_openai_error(res2, 400, "prompt");
  std::string msg2 = json::parse(res2->body)["error"]["message"];
  EXPECT_NE(msg2.find("34"), std::string::npos) << msg2;  // 4 + 30 requested

  auto res3 =
      post("/v1/chat/completions",
           {{"messages", json::array({{{"role", "user"}, {"content", std::string(64, 'z')}}})}});
  expect_openai_error(res3, 400, "messages");
}

TEST_F(ServerTest, UnknownRouteAndModelAre404) {
  start();
  auto c = http();
  auto res = c.Get("/v1/nope");
  expect_openai_error(res, 404, "");
  auto res2 =
      post("/v1/chat/completions",
           {{"model", "gpt-4"}, {"messages", json::array({{{"role", "user"}, {"content", "x"}}})}});
  expect_openai_error(res2, 404, "model");
  EXPECT_EQ(json::parse(res2->body)["error"]["code"], "model_not_found");
}

TEST_F(ServerTest, BodyOverLimitIs413) {
  server::ServerOptions o;
  o.max_body_bytes = 1024;
  start(o);
  auto res = post("/v1/completions", {{"prompt", std::string(4096, 'a')}});
  expect_openai_error(res, 413, "");
  auto ok = post("/v1/completions", {{"prompt", "small"}, {"max_tokens", 1}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ServerTest, QueueFullIs429) {
  FakeEngineOptions eo;
  eo.max_waiting = 0;
  start({}, eo);
  auto res = post("/v1/completions", {{"prompt", "x"}});
  expect_openai_error(res, 429, "");
  auto s =
      post("/v1/chat/completions",
           {{"stream", true}, {"messages", json::array({{{"role", "user"}, {"content", "x"}}})}});
  expect_openai_error(s, 429, "");
}

TEST_F(ServerTest, ApiKeyRequiredExceptHealth) {
  server::ServerOptions o;
  o.api_key = "sekret";
  start(o);
  auto c = http();
  expect_openai_error(c.Get("/v1/models"), 401, "");
  expect_openai_error(c.Get("/metrics"), 401, "");
  expect_openai_error(c.Get("/v1/models", {{"Authorization", "Bearer wrong"}}), 401, "");
  expect_openai_error(post("/v1/completions", {{"prompt", "x"}}), 401, "");
  EXPECT_TRUE(engine_->received().empty());
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto ok = c.Get("/v1/models", {{"Authorization", "Bearer sekret"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto gen = post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}},
                  {{"Authorization", "Bearer sekret"}});
  ASSERT_TRUE(gen);
  EXPECT_EQ(gen->status, 200);
}

TEST_F(ServerTest, MetricsPublicOpensOnlyMetrics) {
  server::ServerOptions o;
  o.api_key = "sekret";
  o.metrics_public = true;
  start(o);
  auto c = http();
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  expect_openai_error(c.Get("/v1/models"), 401, "");
}

TEST_F(ServerTest, MetricsCountRequests) {
  start();
  ASSERT_EQ(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 64}})->status, 200);
  ASSERT_EQ(post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 3}})->status, 200);
  auto c = http();
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string& m = res->body;
  EXPECT_NE(
      m.find("herd_request_success_total{model_name=\"fake-model\",finished_reason=\"stop\"} 1\n"),
      std::string::npos)
      << m;
  EXPECT_NE(
      m.find(
          "herd_request_success_total{model_name=\"fake-model\",finished_reason=\"length\"} 1\n"),
      std::string::npos);
  EXPECT_NE(m.find("herd_time_to_first_token_seconds_count{model_name=\"fake-model\"} 2\n"),
            std::string::npos);
  EXPECT_NE(m.find("herd_e2e_request_latency_seconds_count{model_name=\"fake-model\"} 2\n"),
            std::string::npos);
  // 20 + 3 tokens: 21 inter-token gaps after the two first tokens.
  EXPECT_NE(m.find("herd_inter_token_latency_seconds_count{model_name=\"fake-model\"} 21\n"),
            std::string::npos);
  EXPECT_NE(m.find("herd_generation_tokens_total{model_name=\"fake-model\"} 23\n"),
            std::string::npos);
  EXPECT_NE(m.find("herd_prompt_tokens_total{model_name=\"fake-model\"} 4\n"), std::string::npos);
  EXPECT_NE(m.find("# TYPE herd_num_requests_running gauge"), std::string::npos);
}

}  // namespace
}  // namespace herd::testing
