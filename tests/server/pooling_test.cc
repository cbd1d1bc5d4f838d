// POST /pooling (server/pooling.cc) over a real loopback socket against a FakeEngine that is a
// reward model: text, token and list inputs, chat messages rendered with the template, the
// errors (bad fields, not a reward model, too long, body limit, auth), and generation routes
// refused on a reward model.
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

namespace herd::testing {
namespace {

FakeEngineOptions reward(int labels = 2, int max_model_len = 4096) {
  FakeEngineOptions o;
  o.num_labels = labels;
  o.max_model_len = max_model_len;
  return o;
}

TEST_F(ServerTest, PoolingScoresTextAndTokenInputs) {
  start({}, reward());
  auto res = post("/pooling", {{"model", "fake-model"}, {"input", "Hi"}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json b = json::parse(res->body);
  EXPECT_EQ(b["object"], "list");
  EXPECT_EQ(b["id"].get<std::string>().rfind("pool-", 0), 0u);
  EXPECT_EQ(b["model"], "fake-model");
  const std::vector<int32_t> ids = {FakeTokenizer::kBos, 'H', 'i'};
  EXPECT_EQ(engine_->received().at(0).prompt_ids, ids);
  ASSERT_EQ(b["data"].size(), 1u);
  EXPECT_EQ(b["data"][0]["object"], "pooling");
  EXPECT_EQ(b["data"][0]["index"], 0);
  EXPECT_EQ(b["data"][0]["data"].get<std::vector<float>>(), fake_scores(ids, 2));
  EXPECT_EQ(b["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(b["usage"]["completion_tokens"], 0);
  EXPECT_EQ(b["usage"]["total_tokens"], 3);

  // A list of token-id inputs: one score entry each, in order.
  res = post("/pooling", {{"input", json::array({json::array({1, 2}), json::array({30})})}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  b = json::parse(res->body);
  ASSERT_EQ(b["data"].size(), 2u);
  EXPECT_EQ(b["data"][0]["data"].get<std::vector<float>>(), fake_scores({1, 2}, 2));
  EXPECT_EQ(b["data"][1]["index"], 1);
  EXPECT_EQ(b["data"][1]["data"].get<std::vector<float>>(), fake_scores({30}, 2));
  EXPECT_EQ(b["usage"]["prompt_tokens"], 3);
}

TEST_F(ServerTest, PoolingMessagesUseTheChatTemplateWithoutGenerationPrompt) {
  start({}, reward(1));
  json msgs = json::array(
      {{{"role", "user"}, {"content", "2+2?"}}, {{"role", "assistant"}, {"content", "4"}}});
  auto res = post("/pooling", {{"messages", msgs}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  // The same ids /tokenize gives for the conversation without a generation prompt.
  auto tok = post("/tokenize", {{"messages", msgs}, {"add_generation_prompt", false}});
  ASSERT_TRUE(tok);
  ASSERT_EQ(tok->status, 200) << tok->body;
  const auto want = json::parse(tok->body)["tokens"].get<std::vector<int32_t>>();
  EXPECT_EQ(engine_->received().at(0).prompt_ids, want);
  EXPECT_EQ(json::parse(res->body)["data"][0]["data"].get<std::vector<float>>(),
            fake_scores(want, 1));
}

TEST_F(ServerTest, PoolingBadRequestsAre400NamingTheField) {
  start({}, reward(1, /*max_model_len=*/8));
  auto param_of = [&](const json& body) {
    auto res = post("/pooling", body);
    EXPECT_TRUE(res);
    if (!res) return std::string("(no response)");
    EXPECT_EQ(res->status, 400) << body.dump() << " -> " << res->body;
    return json::parse(res->body)["error"]["param"].get<std::string>();
  };
  EXPECT_EQ(param_of(json::object()), "input");
  EXPECT_EQ(param_of({{"input", 5}}), "input");
  EXPECT_EQ(param_of({{"input", json::array({-1})}}), "input");
  EXPECT_EQ(param_of({{"input", "x"}, {"messages", json::array()}}), "messages");
  EXPECT_EQ(param_of({{"messages", "hi"}}), "messages");
  EXPECT_EQ(param_of({{"input", "x"}, {"add_special_tokens", "yes"}}), "add_special_tokens");
  EXPECT_EQ(param_of({{"input", json::array({100000})}}), "input");  // not in vocab
  EXPECT_EQ(param_of({{"input", json::array({1, 2, 3, 4, 5, 6, 7, 8, 9})}}), "input");  // > 8
  EXPECT_EQ(engine_->received().size(), 0u);
  // The whole context may be prompt: nothing is generated.
  auto res = post("/pooling", {{"input", json::array({1, 2, 3, 4, 5, 6, 7, 8})}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  // An unknown model is a 404, as on the other routes.
  res = post("/pooling", {{"model", "other"}, {"input", "x"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(ServerTest, PoolingNeedsARewardModelAndARewardModelDoesNotGenerate) {
  start();  // a causal LM
  auto res = post("/pooling", {{"input", "x"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "model");
  TearDown();

  start({}, reward());
  for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
    res = post(
        path, {{"prompt", "x"}, {"messages", json::array({{{"role", "user"}, {"content", "x"}}})}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << path;
    EXPECT_EQ(json::parse(res->body)["error"]["param"], "model") << path;
  }
  EXPECT_EQ(engine_->received().size(), 0u);
}

TEST_F(ServerTest, PoolingHonoursAuthAndTheBodyLimit) {
  server::ServerOptions o;
  o.api_key = "sekrit";
  o.max_body_bytes = 1024;
  start(o, reward());
  auto res = post("/pooling", {{"input", "x"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  const httplib::Headers auth = {{"Authorization", "Bearer sekrit"}};
  res = post("/pooling", {{"input", std::string(4096, 'a')}}, auth);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  res = post("/pooling", {{"input", "ok"}}, auth);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

}  // namespace
}  // namespace herd::testing
