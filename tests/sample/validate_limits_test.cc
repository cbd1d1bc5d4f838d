// The stop-string length and stop_token_ids count limits (issue 14 item 3): at the limit passes,
// one over is an InvalidArgument naming the param and the limit.
#include <gtest/gtest.h>

#include <string>

#include "engine/common/error.h"
#include "engine/sample/validate.h"

namespace herd {
namespace {

constexpr int kVocab = 2000;

// {param, message} of the rejection; {"", ""} when accepted.
std::pair<std::string, std::string> check(const SamplingParams& p) {
  try {
    validate_sampling_params(p, kVocab, 10, 100);
  } catch (const InvalidArgument& e) {
    return {e.param(), e.what()};
  }
  return {"", ""};
}

TEST(ValidateLimits, StopStringLength) {
  SamplingParams p;
  p.stop = {"ok", std::string(kMaxStopStringBytes, 'x')};
  EXPECT_EQ(check(p).first, "");
  p.stop[1].push_back('x');
  auto [param, msg] = check(p);
  EXPECT_EQ(param, "stop");
  EXPECT_NE(msg.find(std::to_string(kMaxStopStringBytes)), std::string::npos) << msg;
}

TEST(ValidateLimits, StopTokenIdCount) {
  SamplingParams p;
  for (int i = 0; i < kMaxStopTokenIds; ++i) p.stop_token_ids.push_back(i);
  EXPECT_EQ(check(p).first, "");
  p.stop_token_ids.push_back(0);
  auto [param, msg] = check(p);
  EXPECT_EQ(param, "stop_token_ids");
  EXPECT_NE(msg.find(std::to_string(kMaxStopTokenIds)), std::string::npos) << msg;
}

}  // namespace
}  // namespace herd
