// The report's statistics against hand computation.
#include "engine/eval/eval_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/eval/eval_model.h"

namespace herd::eval {
namespace {

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(float(std::log(p)));
  return out;
}

TEST(Kl, IdenticalDistributionsGiveZero) {
  const std::vector<float> p = {0.3f, -1.0f, 2.5f, 0.0f, 7.0f};
  EXPECT_EQ(kl_divergence(p.data(), p.data(), 5), 0.0);
}

TEST(Kl, IsShiftInvariantLikeSoftmax) {
  const std::vector<float> p = {0.3f, -1.0f, 2.5f}, q = {1.3f, 0.0f, 3.5f};  // q = p + 1
  EXPECT_NEAR(kl_divergence(p.data(), q.data(), 3), 0.0, 1e-12);
}

TEST(Kl, MatchesHandComputation) {
  // P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3) = 0.143841...
  const auto p = logits_of({0.5, 0.5}), q = logits_of({0.25, 0.75});
  EXPECT_NEAR(kl_divergence(p.data(), q.data(), 2), 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0),
              1e-7);
  // Not symmetric: KL(Q || P) = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.130812...
  EXPECT_NEAR(kl_divergence(q.data(), p.data(), 2), 0.25 * std::log(0.5) + 0.75 * std::log(1.5),
              1e-7);
  // Three classes: P = (0.7, 0.2, 0.1), Q = (0.5, 0.3, 0.2).
  const auto a = logits_of({0.7, 0.2, 0.1}), b = logits_of({0.5, 0.3, 0.2});
  const double want =
      0.7 * std::log(0.7 / 0.5) + 0.2 * std::log(0.2 / 0.3) + 0.1 * std::log(0.1 / 0.2);
  EXPECT_NEAR(kl_divergence(a.data(), b.data(), 3), want, 1e-7);
}

TEST(Kl, LargeLogitsStayFinite) {
  const std::vector<float> p = {1000.0f, 0.0f}, q = {0.0f, 1000.0f};
  const double kl = kl_divergence(p.data(), q.data(), 2);
  EXPECT_TRUE(std::isfinite(kl));
  EXPECT_NEAR(kl, 1000.0, 1e-6);
}

TEST(LogSoftmax, SumsToOne) {
  const std::vector<float> x = {1.0f, 2.0f, 3.0f};
  const auto lp = log_softmax(x.data(), 3);
  double s = 0;
  for (double v : lp) s += std::exp(v);
  EXPECT_NEAR(s, 1.0, 1e-12);
  EXPECT_NEAR(lp[2] - lp[1], 1.0, 1e-12);
}

TEST(Entropy, UniformAndPeaked) {
  const std::vector<float> u(8, 0.5f);
  EXPECT_NEAR(entropy(u.data(), 8), std::log(8.0), 1e-12);
  const auto p = logits_of({0.5, 0.25, 0.25});
  EXPECT_NEAR(entropy(p.data(), 3), 1.5 * std::log(2.0), 1e-7);
}

TEST(Argmax, FirstOfTies) {
  const std::vector<float> x = {1.0f, 3.0f, 3.0f, -2.0f};
  EXPECT_EQ(argmax(x.data(), 4), 1);
}

TEST(AgreementLength, CountsTheCommonPrefix) {
  EXPECT_EQ(agreement_length({1, 2, 3, 4}, {1, 2, 3, 4}), 4);
  EXPECT_EQ(agreement_length({1, 2, 3, 4}, {1, 2, 9, 4}), 2);
  EXPECT_EQ(agreement_length({5, 2}, {1, 2}), 0);
  EXPECT_EQ(agreement_length({1, 2}, {1, 2, 3}), 2);  // one ended early (a stop token)
  EXPECT_EQ(agreement_length({}, {1}), 0);
}

TEST(Percentile, InterpolatesLikeNumpy) {
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile(v, 0.5), 2.5);    // numpy.percentile([1,2,3,4], 50)
  EXPECT_DOUBLE_EQ(percentile(v, 0.99), 3.97);  // 1 + 3 * 0.99 ranks -> 3 + 0.97
  EXPECT_DOUBLE_EQ(percentile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(percentile({7}, 0.99), 7.0);
  EXPECT_DOUBLE_EQ(percentile({}, 0.5), 0.0);
}

TEST(Summarize, MeanMinMaxAndPercentiles) {
  const Summary s = summarize({2, 4, 6, 8, 10});
  EXPECT_EQ(s.count, 5);
  EXPECT_DOUBLE_EQ(s.mean, 6);
  EXPECT_DOUBLE_EQ(s.min, 2);
  EXPECT_DOUBLE_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.p50, 6);
  EXPECT_NEAR(s.p99, 9.92, 1e-12);
  EXPECT_EQ(summarize({}).count, 0);
}

TEST(PickToken, GreedyIsArgmaxAndNoiseShiftsTheChoice) {
  const auto l = logits_of({0.2, 0.5, 0.3});
  const std::vector<double> zero(3, 0.0), push_last = {0.0, 0.0, 1.0};
  EXPECT_EQ(pick_token(l.data(), 3, 0.0, push_last.data()), 1);  // greedy ignores the noise
  EXPECT_EQ(pick_token(l.data(), 3, 1.0, zero.data()), 1);
  // log 0.3 + 1 > log 0.5: the noise wins.
  EXPECT_EQ(pick_token(l.data(), 3, 1.0, push_last.data()), 2);
  // A low temperature sharpens towards the argmax whatever the noise.
  EXPECT_EQ(pick_token(l.data(), 3, 0.01, push_last.data()), 1);
}

TEST(PickToken, GumbelMaxSamplesTheSoftmax) {
  const auto l = logits_of({0.2, 0.5, 0.3});
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int> counts(3, 0);
  const int draws = 20000;
  std::vector<double> g(3);
  for (int d = 0; d < draws; ++d) {
    for (double& x : g) x = -std::log(-std::log(u(rng)));
    ++counts[size_t(pick_token(l.data(), 3, 1.0, g.data()))];
  }
  EXPECT_NEAR(counts[0] / double(draws), 0.2, 0.015);
  EXPECT_NEAR(counts[1] / double(draws), 0.5, 0.015);
  EXPECT_NEAR(counts[2] / double(draws), 0.3, 0.015);
}

}  // namespace
}  // namespace herd::eval
