#include "engine/sample/validate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "engine/common/error.h"

namespace herd {
namespace {

constexpr int kVocab = 1000;
constexpr int kPrompt = 30;
constexpr int kMaxLen = 100;

// Returns the InvalidArgument's param (and message through `message`), "" when it passed.
std::string rejected_param(const SamplingParams& p, std::string* message = nullptr,
                           int prompt_len = kPrompt) {
  try {
    validate_sampling_params(p, kVocab, prompt_len, kMaxLen);
  } catch (const InvalidArgument& e) {
    if (message) *message = e.what();
    return e.param();
  }
  return "";
}

template <typename F>
std::string bad(F&& edit) {
  SamplingParams p;
  edit(p);
  return rejected_param(p);
}

TEST(ValidateSamplingParams, DefaultsAndBoundariesPass) {
  EXPECT_EQ(rejected_param(SamplingParams{}), "");
  SamplingParams p;
  p.temperature = 0.0;
  p.top_p = 1.0;
  p.top_k = 0;
  p.min_p = 1.0;
  p.n = kMaxSamplesPerRequest;
  p.max_tokens = kMaxLen - kPrompt;  // exactly fills the context
  p.min_tokens = kMaxLen - kPrompt;
  p.presence_penalty = -2.0;
  p.frequency_penalty = 2.0;
  p.repetition_penalty = 1.3;
  p.logit_bias = {{0, -100.0f}, {kVocab - 1, 100.0f}};
  p.logprobs = 20;
  p.stop = std::vector<std::string>(kMaxStopStrings, "\xe2\x82\xac");  // "€"
  p.stop_token_ids = {0, kVocab - 1};
  EXPECT_EQ(rejected_param(p), "");
  p.temperature = 2.0;
  p.top_k = -1;
  p.logprobs = 0;
  EXPECT_EQ(rejected_param(p), "");
}

TEST(ValidateSamplingParams, EachBadParamIsNamed) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(bad([](auto& p) { p.temperature = -0.1; }), "temperature");
  EXPECT_EQ(bad([](auto& p) { p.temperature = 2.01; }), "temperature");
  EXPECT_EQ(bad([&](auto& p) { p.temperature = nan; }), "temperature");
  EXPECT_EQ(bad([](auto& p) { p.top_p = 0.0; }), "top_p");
  EXPECT_EQ(bad([](auto& p) { p.top_p = 1.5; }), "top_p");
  EXPECT_EQ(bad([&](auto& p) { p.top_p = nan; }), "top_p");
  EXPECT_EQ(bad([](auto& p) { p.top_k = -2; }), "top_k");
  EXPECT_EQ(bad([](auto& p) { p.min_p = -0.1; }), "min_p");
  EXPECT_EQ(bad([](auto& p) { p.min_p = 1.1; }), "min_p");
  EXPECT_EQ(bad([](auto& p) { p.n = 0; }), "n");
  EXPECT_EQ(bad([](auto& p) { p.n = kMaxSamplesPerRequest + 1; }), "n");
  EXPECT_EQ(bad([](auto& p) { p.max_tokens = 0; }), "max_tokens");
  EXPECT_EQ(bad([](auto& p) { p.max_tokens = kMaxLen - kPrompt + 1; }), "max_tokens");
  EXPECT_EQ(bad([](auto& p) { p.min_tokens = -1; }), "min_tokens");
  EXPECT_EQ(bad([](auto& p) { p.max_tokens = 5, p.min_tokens = 6; }), "min_tokens");
  EXPECT_EQ(bad([](auto& p) { p.min_tokens = kMaxLen - kPrompt + 1; }), "min_tokens");
  EXPECT_EQ(bad([](auto& p) { p.presence_penalty = 2.5; }), "presence_penalty");
  EXPECT_EQ(bad([](auto& p) { p.presence_penalty = -2.5; }), "presence_penalty");
  EXPECT_EQ(bad([](auto& p) { p.frequency_penalty = -2.1; }), "frequency_penalty");
  EXPECT_EQ(bad([&](auto& p) { p.frequency_penalty = nan; }), "frequency_penalty");
  EXPECT_EQ(bad([](auto& p) { p.repetition_penalty = 0.0; }), "repetition_penalty");
  EXPECT_EQ(bad([](auto& p) { p.repetition_penalty = -1.0; }), "repetition_penalty");
  EXPECT_EQ(bad([](auto& p) { p.repetition_penalty = INFINITY; }), "repetition_penalty");
  EXPECT_EQ(bad([](auto& p) { p.logit_bias = {{kVocab, 1.0f}}; }), "logit_bias");
  EXPECT_EQ(bad([](auto& p) { p.logit_bias = {{-1, 1.0f}}; }), "logit_bias");
  EXPECT_EQ(bad([](auto& p) { p.logit_bias = {{3, 100.5f}}; }), "logit_bias");
  EXPECT_EQ(bad([](auto& p) { p.logit_bias = {{3, -101.0f}}; }), "logit_bias");
  EXPECT_EQ(bad([](auto& p) { p.logit_bias = {{3, NAN}}; }), "logit_bias");
  EXPECT_EQ(bad([](auto& p) { p.stop = std::vector<std::string>(kMaxStopStrings + 1, "x"); }),
            "stop");
  EXPECT_EQ(bad([](auto& p) { p.stop = {"ok", ""}; }), "stop");
  EXPECT_EQ(bad([](auto& p) { p.stop = {"\xff"}; }), "stop");
  EXPECT_EQ(bad([](auto& p) { p.stop_token_ids = {kVocab}; }), "stop_token_ids");
  EXPECT_EQ(bad([](auto& p) { p.logprobs = -1; }), "logprobs");
  EXPECT_EQ(bad([](auto& p) { p.logprobs = kMaxTopLogprobs + 1; }), "logprobs");
  EXPECT_EQ(bad([](auto& p) { p.prompt_logprobs = 0; }), "prompt_logprobs");
  EXPECT_EQ(bad([](auto& p) { p.prompt_logprobs = 5; }), "prompt_logprobs");
}

TEST(ValidateSamplingParams, TooLongNamesBothLengths) {
  SamplingParams p;
  p.max_tokens = 80;
  std::string message;
  EXPECT_EQ(rejected_param(p, &message), "max_tokens");
  EXPECT_NE(message.find("30"), std::string::npos) << message;   // the prompt's tokens
  EXPECT_NE(message.find("80"), std::string::npos) << message;   // max_tokens
  EXPECT_NE(message.find("100"), std::string::npos) << message;  // max_model_len
}

TEST(ValidateSamplingParams, PromptWithoutRoomIsRejected) {
  std::string message;
  EXPECT_EQ(rejected_param(SamplingParams{}, &message, kMaxLen), "prompt");
  EXPECT_NE(message.find("100"), std::string::npos) << message;
  EXPECT_EQ(rejected_param(SamplingParams{}, nullptr, 0), "prompt");
  EXPECT_EQ(rejected_param(SamplingParams{}, nullptr, kMaxLen - 1), "");
}

TEST(IsValidUtf8, AcceptsWellFormedRejectsTheRest) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\n"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9"));          // é
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));      // €
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));  // 😀
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("a\xc3(b"));           // bad continuation
}

}  // namespace
}  // namespace herd
