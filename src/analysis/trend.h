// Robust trend statistics for the per-stack time series: median and quantiles, the
// Theil-Sen slope (median of pairwise slopes: up to ~29% of the points can be arbitrary
// without moving it, which is what a series of sampled estimates needs, where one heavy
// weight entering or leaving makes a jump), and the R² of a least-squares line.
// Pure functions; thread-safe.
#pragma once

#include <span>
#include <utility>
#include <vector>

namespace leakwatch::analysis {

// Quantile q in [0, 1] with linear interpolation between order statistics; 0 when empty.
[[nodiscard]] double quantile(std::vector<double> values, double q);
[[nodiscard]] inline double median(std::vector<double> values) {
  return quantile(std::move(values), 0.5);
}

// Theil-Sen slope of y over t: the median of (y_j - y_i) / (t_j - t_i) over all pairs with
// t_j > t_i.  0 with fewer than two distinct times.  O(n²) pairs: callers keep n bounded
// (StackHistory holds at most a few hundred points); above kMaxTheilSenPoints the series is
// thinned evenly first.
inline constexpr size_t kMaxTheilSenPoints = 512;
[[nodiscard]] double theil_sen_slope(std::span<const double> t, std::span<const double> y);

// Coefficient of determination of the least-squares line through (t, y) (the squared Pearson
// correlation).  0 when t or y is constant: a flat series has no trend for a line to explain.
[[nodiscard]] double r_squared(std::span<const double> t, std::span<const double> y);

}  // namespace leakwatch::analysis
