// The Poisson arrival schedule: a statistics check over many draws (fixed seed, so it is
// deterministic) and its structural properties. No clocks.
#include "benchmarks/client/arrivals.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "benchmarks/client/stats.h"

namespace herd::bench {
namespace {

TEST(Arrivals, ExponentialGapsWithMeanOneOverRate) {
  const double rate = 4.0;
  const int n = 20001;
  std::vector<double> t = poisson_arrivals(n, rate, 1234);
  ASSERT_EQ(t.size(), static_cast<size_t>(n));
  EXPECT_EQ(t[0], 0.0);
  std::vector<double> gaps;
  for (int i = 1; i < n; ++i) {
    ASSERT_GE(t[i], t[i - 1]);
    gaps.push_back(t[i] - t[i - 1]);
  }
  // 20000 exponential gaps: the sample mean's standard error is 0.25 / sqrt(20000) ~ 0.0018,
  // so 5% (0.0125) is a loose bound; an exponential's std equals its mean, and its median is
  // ln 2 times the mean.
  EXPECT_NEAR(mean(gaps), 1 / rate, 0.05 / rate);
  EXPECT_NEAR(stddev(gaps), 1 / rate, 0.1 / rate);
  EXPECT_NEAR(median(gaps), std::log(2.0) / rate, 0.1 / rate);
}

TEST(Arrivals, SameSeedSameSchedule) {
  EXPECT_EQ(poisson_arrivals(100, 2.0, 7), poisson_arrivals(100, 2.0, 7));
  EXPECT_NE(poisson_arrivals(100, 2.0, 7), poisson_arrivals(100, 2.0, 8));
}

TEST(Arrivals, InfiniteRateSendsAllAtOnce) {
  std::vector<double> t = poisson_arrivals(50, std::numeric_limits<double>::infinity(), 1);
  EXPECT_EQ(t, std::vector<double>(50, 0.0));
}

TEST(Arrivals, BadArguments) {
  EXPECT_THROW(poisson_arrivals(3, 0.0, 1), std::invalid_argument);
  EXPECT_THROW(poisson_arrivals(3, -1.0, 1), std::invalid_argument);
  EXPECT_THROW(poisson_arrivals(-1, 1.0, 1), std::invalid_argument);
  EXPECT_TRUE(poisson_arrivals(0, 1.0, 1).empty());
}

}  // namespace
}  // namespace herd::bench
