// /v1/completions over a real loopback socket against the FakeEngine.
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

namespace herd::testing {
namespace {

TEST_F(ServerTest, CompletionStringPrompt) {
  start();
  auto res =
      post("/v1/completions", {{"model", "fake-model"}, {"prompt", "Once"}, {"max_tokens", 50}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json b = json::parse(res->body);
  EXPECT_EQ(b["object"], "text_completion");
  EXPECT_EQ(b["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(b["choices"][0]["text"], "Hello from sample 0!");
  EXPECT_EQ(b["choices"][0]["finish_reason"], "stop");
  auto req = engine_->received().at(0);
  // BOS + the prompt's byte tokens.
  EXPECT_EQ(req.prompt_ids, (std::vector<int32_t>{FakeTokenizer::kBos, 'O', 'n', 'c', 'e'}));
  EXPECT_EQ(b["usage"]["prompt_tokens"], 5);
}

TEST_F(ServerTest, CompletionDefaultMaxTokensIs16) {
  start();
  auto res = post("/v1/completions", {{"prompt", "x"}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(engine_->received().at(0).params.max_tokens, 16);
  json b = json::parse(res->body);
  EXPECT_EQ(b["choices"][0]["text"], std::string("Hello from sample 0!").substr(0, 16));
  EXPECT_EQ(b["choices"][0]["finish_reason"], "length");
}

TEST_F(ServerTest, CompletionTokenPromptsAndListsWithN) {
  start();
  auto res = post("/v1/completions",
                  {{"prompt", json::array({json::array({1, 2, 3}), json::array({4, 5})})},
                   {"n", 2},
                   {"max_tokens", 64}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json b = json::parse(res->body);
  ASSERT_EQ(b["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(b["choices"][i]["index"], i);
    EXPECT_EQ(b["choices"][i]["text"], "Hello from sample " + std::to_string(i % 2) + "!");
  }
  auto reqs = engine_->received();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(reqs[1].prompt_ids, (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(b["usage"]["prompt_tokens"], 5);

  auto single = post("/v1/completions", {{"prompt", json::array({7, 8})}, {"max_tokens", 2}});
  ASSERT_TRUE(single);
  ASSERT_EQ(single->status, 200);
  EXPECT_EQ(engine_->received().back().prompt_ids, (std::vector<int32_t>{7, 8}));
}

TEST_F(ServerTest, CompletionEchoAndLogprobs) {
  start();
  auto res = post("/v1/completions",
                  {{"prompt", "ab"}, {"echo", true}, {"logprobs", 1}, {"max_tokens", 3}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  json c = json::parse(res->body)["choices"][0];
  EXPECT_EQ(c["text"], "abHel");
  const json& lp = c["logprobs"];
  // BOS, 'a', 'b' from the prompt (logprob null), then three generated tokens.
  ASSERT_EQ(lp["tokens"].size(), 6u);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["token_logprobs"][2].is_null());
  EXPECT_FLOAT_EQ(lp["token_logprobs"][3].get<float>(), -0.5f);
  EXPECT_EQ(lp["tokens"][3], "H");
  EXPECT_EQ(lp["top_logprobs"][3].size(), 1u);
  ASSERT_EQ(lp["text_offset"].size(), 6u);
  for (size_t i = 1; i < 6; ++i)
    EXPECT_EQ(lp["text_offset"][i].get<int>() - lp["text_offset"][i - 1].get<int>(),
              static_cast<int>(lp["tokens"][i - 1].get<std::string>().size()));
}

TEST_F(ServerTest, CompletionStreamWithUsage) {
  start();
  auto res = post("/v1/completions", {{"prompt", "x"},
                                      {"max_tokens", 64},
                                      {"stream", true},
                                      {"stream_options", {{"include_usage", true}}}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  auto events = sse_payloads(res->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json c = json::parse(events[i]);
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_TRUE(c["usage"].is_null());
    text += c["choices"][0]["text"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, "Hello from sample 0!");
  EXPECT_EQ(finish, "stop");
  json u = json::parse(events[events.size() - 2]);
  EXPECT_EQ(u["choices"], json::array());
  EXPECT_EQ(u["usage"]["completion_tokens"], 20);
  EXPECT_EQ(u["usage"]["prompt_tokens"], 2);
}

TEST_F(ServerTest, CompletionStopString) {
  start();
  auto res =
      post("/v1/completions", {{"prompt", "x"}, {"stop", json::array({"m"})}, {"max_tokens", 64}});
  ASSERT_TRUE(res);
  json c = json::parse(res->body)["choices"][0];
  EXPECT_EQ(c["text"], "Hello fro");
  EXPECT_EQ(c["finish_reason"], "stop");
}

}  // namespace
}  // namespace herd::testing
