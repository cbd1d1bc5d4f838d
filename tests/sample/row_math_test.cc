#include "engine/sample/row_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace herd {
namespace {

TEST(SamplerExp, CloseToExpOverItsRange) {
  double worst = 0.0;
  for (float x = -87.0f; x <= 88.0f; x += 0.00731f) {
    const double want = std::exp(double(x));
    worst = std::max(worst, std::abs(double(sampler_exp(x)) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(sampler_exp(0.0f), 1.0f);
  EXPECT_EQ(sampler_exp(-88.0f), 0.0f);
  EXPECT_EQ(sampler_exp(-std::numeric_limits<float>::infinity()), 0.0f);
}

TEST(SamplerExp, IsMonotone) {
  float prev = 0.0f;
  for (float x = -30.0f; x <= 0.0f; x += 0.001f) {
    const float e = sampler_exp(x);
    ASSERT_GE(e, prev) << x;
    prev = e;
  }
}

TEST(RowMax, FindsMaxAnywhere) {
  std::vector<float> row(37, -5.0f);
  for (size_t at = 0; at < row.size(); ++at) {
    row[at] = 2.5f;
    EXPECT_EQ(row_max(row), 2.5f);
    row[at] = -5.0f;
  }
  EXPECT_EQ(row_max(std::vector<float>(3, -std::numeric_limits<float>::infinity())),
            -std::numeric_limits<float>::infinity());
}

TEST(LaneSum, FollowsTheDocumentedOrder) {
  // 1 + 2^-60 is lost in fp64 unless the tiny terms meet each other first: the lane order
  // decides the result, so check it against the documented one.
  std::vector<float> w(19);
  for (size_t i = 0; i < w.size(); ++i) w[i] = (i % 3 == 0) ? 1.0f : 0x1.0p-60f;
  double lanes[8] = {};
  for (size_t i = 0; i < w.size(); ++i) lanes[i % 8] += double(w[i]);
  const double want = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
                      ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  EXPECT_EQ(lane_sum(w.data(), w.size()), want);
}

TEST(ExpWeights, WeightsAndBlockSums) {
  std::vector<float> row(2 * kSumBlock + 5);
  for (size_t i = 0; i < row.size(); ++i) row[i] = float(i % 7) * 0.5f - 3.0f;
  row[3] = -std::numeric_limits<float>::infinity();
  std::vector<float> w(row.size());
  std::vector<double> blocks(3);
  const double total = exp_weights(row, 0.0f, w.data(), blocks.data());
  EXPECT_EQ(w[3], 0.0f);
  EXPECT_EQ(w[1], sampler_exp(row[1]));
  EXPECT_EQ(blocks[2], lane_sum(w.data() + 2 * kSumBlock, 5));
  EXPECT_EQ(total, (blocks[0] + blocks[1]) + blocks[2]);
  double plain = 0.0;
  for (float x : row) plain += std::exp(double(x));
  EXPECT_NEAR(total, plain, plain * 1e-6);
}

TEST(ExpWeights, SparseMatchesDenseBitForBit) {
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> row(3 * kSumBlock + 77, ninf);
  const std::vector<int32_t> ids = {0, 5, 9, 1023, 1024, 2100, 2101, 2102, 3 * kSumBlock + 76};
  for (size_t k = 0; k < ids.size(); ++k) row[size_t(ids[k])] = 0.37f * float(k) - 1.0f;
  std::vector<float> wd(row.size()), ws(row.size(), -1.0f);
  std::vector<double> bd(4), bs(4, -1.0);
  const double dense = exp_weights(row, 2.0f, wd.data(), bd.data());
  const double sparse = exp_weights_sparse(row, ids, 2.0f, ws.data(), bs.data());
  EXPECT_EQ(sparse, dense);
  EXPECT_EQ(bs, bd);
  for (int32_t id : ids) EXPECT_EQ(ws[size_t(id)], wd[size_t(id)]);
}

}  // namespace
}  // namespace herd
