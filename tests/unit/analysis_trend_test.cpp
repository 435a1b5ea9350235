// Robust trend statistics and the bounded per-stack history.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "analysis/history.h"
#include "analysis/trend.h"

namespace leakwatch::analysis {
namespace {

TEST(Trend, Quantiles) {
  EXPECT_EQ(median({}), 0);
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(quantile({0, 10}, 0.9), 9);
}

// Theil-Sen ignores a minority of wild points (up to ~29%); least squares would not.
TEST(Trend, TheilSenIgnoresOutliers) {
  std::mt19937_64 rng(11);
  std::vector<double> t, y;
  for (int i = 0; i < 100; ++i) {
    t.push_back(i);
    y.push_back(3.0 * i + 7);
  }
  for (int i = 0; i < 20; ++i) y[rng() % 100] += 1e6;  // 20% of points hit by a huge jump
  EXPECT_NEAR(theil_sen_slope(t, y), 3.0, 0.01);
  EXPECT_EQ(theil_sen_slope(std::vector<double>{1}, std::vector<double>{1}), 0);
}

TEST(Trend, TheilSenThinsLongSeries) {
  std::vector<double> t, y;
  for (int i = 0; i < 5000; ++i) {
    t.push_back(i * 0.5);
    y.push_back(-2.0 * i * 0.5);
  }
  EXPECT_NEAR(theil_sen_slope(t, y), -2.0, 1e-12);
}

TEST(Trend, RSquared) {
  std::vector<double> t = {1, 2, 3, 4}, line = {2, 4, 6, 8}, flat = {5, 5, 5, 5};
  EXPECT_DOUBLE_EQ(r_squared(t, line), 1.0);
  EXPECT_EQ(r_squared(t, flat), 0.0);
  std::vector<double> vee = {4, 1, 1, 4};  // symmetric: no linear trend at all
  EXPECT_NEAR(r_squared(t, vee), 0.0, 1e-12);
}

TEST(StackHistory, KeepsRawPointsUntilFull) {
  StackHistory h(8);
  for (int i = 1; i <= 7; ++i) ASSERT_TRUE(h.add_point(i, 10.0 * i, i));
  std::vector<SeriesPoint> p = h.points();
  ASSERT_EQ(p.size(), 7u);
  EXPECT_EQ(p[6].t_s, 7);
  EXPECT_EQ(p[6].bytes, 70);
  EXPECT_EQ(h.interval_s(), 1);
  EXPECT_FALSE(h.add_point(7, 0, 0));  // time must increase
  EXPECT_FALSE(h.add_point(6.5, 0, 0));
  EXPECT_EQ(h.raw_points(), 7u);
}

// Compaction averages neighbours and keeps later points at the same coarser spacing, so the
// series stays uniform and covers the whole session.
TEST(StackHistory, CompactsToUniformSpacing) {
  StackHistory h(8);
  for (int i = 1; i <= 100; ++i) ASSERT_TRUE(h.add_point(i, 2.0 * i, 1));
  std::vector<SeriesPoint> p = h.points();
  ASSERT_LE(p.size(), 8u);
  ASSERT_GE(p.size(), 4u);
  EXPECT_LT(p.front().t_s, 10);  // still starts near the beginning
  EXPECT_EQ(h.latest()->t_s, 100);
  EXPECT_EQ(h.latest()->bytes, 200);
  EXPECT_EQ(h.raw_points(), 100u);
  EXPECT_EQ(h.interval_s(), 1);
  // Averages of a line lie on the line; full buckets are equally spaced.
  for (const SeriesPoint& q : p) EXPECT_DOUBLE_EQ(q.bytes, 2 * q.t_s);
  double spacing = p[1].t_s - p[0].t_s;
  for (size_t i = 2; i + 1 < p.size(); ++i) EXPECT_DOUBLE_EQ(p[i].t_s - p[i - 1].t_s, spacing);
}

TEST(StackHistory, FirstNonZero) {
  StackHistory h;
  EXPECT_TRUE(std::isnan(h.first_nonzero_t()));
  EXPECT_FALSE(h.latest().has_value());
  ASSERT_TRUE(h.add_point(1, 0, 0));
  ASSERT_TRUE(h.add_point(2, 5, 1));
  EXPECT_EQ(h.first_nonzero_t(), 2);
}

}  // namespace
}  // namespace leakwatch::analysis
