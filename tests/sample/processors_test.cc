#include "engine/sample/processors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace herd {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<int32_t> surviving_ids(const std::vector<float>& row) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < row.size(); ++i) {
    if (row[i] != -kInf) ids.push_back(int32_t(i));
  }
  return ids;
}

TEST(LogitBias, AddsPerIdAndDuplicatesAccumulate) {
  std::vector<float> row = {1.0f, 2.0f, 3.0f};
  apply_logit_bias(row, {{0, 0.5f}, {2, -3.0f}, {2, 1.0f}});
  EXPECT_EQ(row, (std::vector<float>{1.5f, 2.0f, 1.0f}));
}

TEST(MaskTokens, SetsMinusInfinity) {
  std::vector<float> row = {1.0f, 2.0f, 3.0f};
  const std::vector<int32_t> ids = {2, 0, 7};  // 7 is outside the row: ignored
  mask_tokens(row, ids);
  EXPECT_EQ(row, (std::vector<float>{-kInf, 2.0f, -kInf}));
}

TEST(Penalties, RepetitionDividesPositiveMultipliesNegativeOverPromptAndOutput) {
  SamplerWorkspace ws(5);
  std::vector<float> row = {2.0f, -1.0f, 3.0f, 0.5f, -4.0f};
  const std::vector<int32_t> prompt = {0, 0}, output = {1, 1};
  apply_penalties(row, prompt, output, Penalties{2.0f, 0.0f, 0.0f}, ws);
  // Each distinct token is penalised once, however often it occurs.
  EXPECT_EQ(row, (std::vector<float>{1.0f, -2.0f, 3.0f, 0.5f, -4.0f}));
}

TEST(Penalties, FrequencyAndPresenceCountOnlyOutputTokens) {
  SamplerWorkspace ws(5);
  std::vector<float> row = {2.0f, -1.0f, 3.0f, 0.5f, -4.0f};
  const std::vector<int32_t> prompt = {0, 2}, output = {1, 1, 3};
  apply_penalties(row, prompt, output, Penalties{1.0f, 0.5f, 0.25f}, ws);
  // token 1: -1 - 0.5 * 2 - 0.25; token 3: 0.5 - 0.5 * 1 - 0.25; prompt-only tokens untouched.
  EXPECT_EQ(row, (std::vector<float>{2.0f, -2.25f, 3.0f, -0.25f, -4.0f}));
}

TEST(Penalties, RepetitionComesBeforeFrequencyAndWorkspaceIsReset) {
  SamplerWorkspace ws(3);
  const std::vector<int32_t> prompt = {}, output = {0};
  for (int call = 0; call < 2; ++call) {  // the second call must see a clean workspace
    std::vector<float> row = {2.0f, 1.0f, 1.0f};
    apply_penalties(row, prompt, output, Penalties{2.0f, 1.0f, 0.0f}, ws);
    EXPECT_EQ(row[0], 0.0f);  // 2 / 2 - 1; the other order would give (2 - 1) / 2
    EXPECT_EQ(row[1], 1.0f);
  }
}

TEST(Temperature, Divides) {
  std::vector<float> row = {1.0f, -2.0f, -kInf};
  apply_temperature(row, 0.5f);
  EXPECT_EQ(row, (std::vector<float>{2.0f, -4.0f, -kInf}));
}

TEST(MinP, DropsTokensBelowFractionOfTheBest) {
  // Probabilities proportional to 1, 0.5, 0.1, 0.3 of the best.
  std::vector<float> row = {0.0f, std::log(0.5f), std::log(0.1f), std::log(0.3f)};
  for (float& l : row) l += 7.0f;  // shifting all logits changes nothing
  apply_min_p(row, 0.2f);
  EXPECT_EQ(surviving_ids(row), (std::vector<int32_t>{0, 1, 3}));
  apply_min_p(row, 1.0f);  // only the best survives
  EXPECT_EQ(surviving_ids(row), (std::vector<int32_t>{0}));
}

TEST(TopK, KeepsExactlyKWithTiesToLowerId) {
  SamplerWorkspace ws(5);
  const std::vector<float> base = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
  auto top_k = [&](int k) {
    std::vector<float> row = base;
    apply_top_k_top_p(row, k, 1.0f, ws);
    return surviving_ids(row);
  };
  EXPECT_EQ(top_k(1), (std::vector<int32_t>{1}));
  EXPECT_EQ(top_k(2), (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(top_k(3), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(top_k(5), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(top_k(-1).size(), 5u);
  // Survivors keep their values.
  std::vector<float> row = base;
  apply_top_k_top_p(row, 2, 1.0f, ws);
  EXPECT_EQ(row[1], 3.0f);
  EXPECT_EQ(row[3], 3.0f);
}

TEST(TopP, KeepsShortestPrefixReachingP) {
  SamplerWorkspace ws(4);
  // Probabilities 0.5, 0.1, 0.3, 0.1: ranked 0, 2, 1, 3 (1 and 3 tie -> lower id first).
  const std::vector<float> base = {std::log(0.5f), std::log(0.1f), std::log(0.3f), std::log(0.1f)};
  auto top_p = [&](float p, int k = -1) {
    std::vector<float> row = base;
    apply_top_k_top_p(row, k, p, ws);
    return surviving_ids(row);
  };
  EXPECT_EQ(top_p(0.4f), (std::vector<int32_t>{0}));
  EXPECT_EQ(top_p(0.6f), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(top_p(0.85f), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(top_p(0.95f), (std::vector<int32_t>{0, 1, 2, 3}));
  // After top_k = 2 the mass is renormalised over {0, 2}: 0.625 + 0.375, so 0.6 keeps one.
  EXPECT_EQ(top_p(0.6f, 2), (std::vector<int32_t>{0}));
  EXPECT_EQ(top_p(0.7f, 2), (std::vector<int32_t>{0, 2}));
}

TEST(TopP, WideFlatDistributionCrossesSelectionChunks) {
  // 10000 equal logits: top_p 0.5 keeps exactly the 5000 lowest ids (ties rank by id).
  SamplerWorkspace ws(10000);
  std::vector<float> row(10000, 0.25f);
  apply_top_k_top_p(row, -1, 0.5f, ws);
  const auto ids = surviving_ids(row);
  ASSERT_EQ(ids.size(), 5000u);
  EXPECT_EQ(ids.front(), 0);
  EXPECT_EQ(ids.back(), 4999);
}

// A plain full-sort reference of the rule documented in processors.h.
std::vector<int32_t> reference_top_k_top_p(const std::vector<float>& row, int k, float p) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < row.size(); ++i) {
    if (row[i] != -kInf) order.push_back(int32_t(i));
  }
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  if (k > 0 && size_t(k) < order.size()) order.resize(size_t(k));
  if (p < 1.0f) {
    std::vector<float> masked(row.size(), -kInf), w(row.size());
    for (int32_t id : order) masked[size_t(id)] = row[size_t(id)];
    std::vector<double> blocks(row.size() / kSumBlock + 1);
    const double total = exp_weights(masked, row[size_t(order[0])], w.data(), blocks.data());
    double running = 0.0;
    size_t cut = order.size();
    for (size_t i = 0; i < order.size(); ++i) {
      running += double(w[size_t(order[i])]);
      if (running >= double(p) * total) {
        cut = i + 1;
        break;
      }
    }
    order.resize(cut);
  }
  std::sort(order.begin(), order.end());
  return order;
}

TEST(TopKTopP, MatchesFullSortReferenceOnRandomRows) {
  std::mt19937 gen(1234);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  SamplerWorkspace ws(5000);
  for (int trial = 0; trial < 80; ++trial) {
    std::vector<float> row(5000);
    for (float& l : row) l = std::round(normal(gen) * 4.0f) / 4.0f;         // rounding makes ties
    for (int i = 0; i < 100; ++i) row[size_t(gen() % row.size())] = -kInf;  // some masked
    // Scales from peaked to flat, so top_p sometimes needs the tokens below the heavy cut.
    const float scale = std::array<float, 4>{1.0f, 0.05f, 3.0f, 0.01f}[trial % 4];
    for (float& l : row) l *= scale;
    const int k = std::array<int, 5>{-1, 1, 50, 2000, 0}[trial % 5];
    const float p = std::array<float, 6>{1.0f, 0.1f, 0.5f, 0.9f, 0.999f, 0.99999f}[trial % 6];
    const auto want = reference_top_k_top_p(row, k, p);
    std::vector<float> got_row = row;
    apply_top_k_top_p(got_row, k, p, ws);
    EXPECT_EQ(surviving_ids(got_row), want) << "trial " << trial << " k " << k << " p " << p;
    for (int32_t id : want) EXPECT_EQ(got_row[size_t(id)], row[size_t(id)]);
  }
}

}  // namespace
}  // namespace herd
