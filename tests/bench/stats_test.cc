// Summary statistics against values worked out by hand (numpy conventions: population std,
// linear-interpolated percentiles).
#include "benchmarks/client/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace herd::bench {
namespace {

TEST(Stats, FourValues) {
  const std::vector<double> xs = {4, 1, 3, 2};  // unsorted on purpose
  EXPECT_DOUBLE_EQ(mean(xs), 2.5);
  // deviations -1.5 -0.5 0.5 1.5 -> squares sum 5 -> 5/4
  EXPECT_DOUBLE_EQ(stddev(xs), std::sqrt(1.25));
  EXPECT_DOUBLE_EQ(median(xs), 2.5);
  EXPECT_DOUBLE_EQ(percentile(xs, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(xs, 100), 4);
  EXPECT_NEAR(percentile(xs, 90), 3.7, 1e-12);   // rank 2.7: 3 + 0.7 * (4 - 3)
  EXPECT_NEAR(percentile(xs, 99), 3.97, 1e-12);  // rank 2.97
  EXPECT_NEAR(percentile(xs, 25), 1.75, 1e-12);  // rank 0.75
}

TEST(Stats, TextbookSample) {
  const std::vector<double> xs = {2, 4, 4, 4, 5, 5, 7, 9};
  const Summary s = summarize(xs);
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_DOUBLE_EQ(s.std, 2);  // deviations squared sum to 32; 32 / 8 = 4
  EXPECT_DOUBLE_EQ(s.median, 4.5);
  EXPECT_NEAR(s.p90, 7.6, 1e-12);   // rank 6.3: 7 + 0.3 * 2
  EXPECT_NEAR(s.p99, 8.86, 1e-12);  // rank 6.93: 7 + 0.93 * 2
  EXPECT_EQ(s.max, 9);              // the worst sample, which p99 interpolates below
}

TEST(Stats, OneValueAndEmpty) {
  const Summary one = summarize({7});
  EXPECT_EQ(one.mean, 7);
  EXPECT_EQ(one.median, 7);
  EXPECT_EQ(one.std, 0);
  EXPECT_EQ(one.p90, 7);
  EXPECT_EQ(one.p99, 7);
  // vLLM reports np.mean(xs or 0) etc.: zeros for an empty sample.
  const Summary none = summarize({});
  EXPECT_EQ(none.mean, 0);
  EXPECT_EQ(none.median, 0);
  EXPECT_EQ(none.std, 0);
  EXPECT_EQ(none.p99, 0);
  EXPECT_EQ(none.max, 0);
}

TEST(Stats, PercentileOutOfRangeThrows) {
  EXPECT_THROW(percentile({1, 2}, 101), std::invalid_argument);
  EXPECT_THROW(percentile({1, 2}, -1), std::invalid_argument);
}

}  // namespace
}  // namespace herd::bench
