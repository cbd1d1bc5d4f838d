#include "engine/sample/logprobs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace herd {
namespace {

TEST(Logprobs, LogSoftmaxOfRawRowAndTopN) {
  const std::vector<float> row = {1.0f, 2.0f, 3.0f, 0.0f};
  const double log_z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0) + 1.0);
  const TokenLogprob lp = compute_logprobs(row, 0, 2);
  EXPECT_EQ(lp.id, 0);
  EXPECT_NEAR(lp.logprob, 1.0 - log_z, 1e-6);
  ASSERT_EQ(lp.top.size(), 2u);
  EXPECT_EQ(lp.top[0].first, 2);
  EXPECT_NEAR(lp.top[0].second, 3.0 - log_z, 1e-6);
  EXPECT_EQ(lp.top[1].first, 1);
  EXPECT_NEAR(lp.top[1].second, 2.0 - log_z, 1e-6);
}

TEST(Logprobs, ZeroTopGivesOnlyTheChosenAndTiesGoToLowerId) {
  EXPECT_TRUE(compute_logprobs(std::vector<float>{1.0f, 2.0f}, 1, 0).top.empty());
  const TokenLogprob lp = compute_logprobs(std::vector<float>{0.0f, 5.0f, 1.0f, 5.0f}, 2, 3);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].first, 1);
  EXPECT_EQ(lp.top[1].first, 3);
  EXPECT_EQ(lp.top[2].first, 2);
}

TEST(Logprobs, AllTokensSumToOneAndLargeLogitsStayFinite) {
  const std::vector<float> row = {1000.0f, 999.0f, 998.0f, -5.0f, 0.0f};
  const TokenLogprob lp = compute_logprobs(row, 3, 5);
  ASSERT_EQ(lp.top.size(), 5u);
  double mass = 0.0;
  for (const auto& [id, l] : lp.top) {
    ASSERT_TRUE(std::isfinite(l));
    mass += std::exp(double(l));
  }
  EXPECT_NEAR(mass, 1.0, 1e-6);
  EXPECT_EQ(lp.logprob, lp.top[4].second);  // token 3 is the least likely
}

}  // namespace
}  // namespace herd
