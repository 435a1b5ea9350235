#include "analysis/trend.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace leakwatch::analysis {

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  // Two selections instead of a sort: linear time, which matters for Theil-Sen's n² slopes.
  double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  auto lo = static_cast<size_t>(std::floor(pos));
  double frac = pos - static_cast<double>(lo);
  std::nth_element(values.begin(), values.begin() + static_cast<ptrdiff_t>(lo), values.end());
  double a = values[lo];
  if (frac == 0 || lo + 1 >= values.size()) return a;
  // The next order statistic is the smallest of the elements after position lo.
  double b = *std::min_element(values.begin() + static_cast<ptrdiff_t>(lo) + 1, values.end());
  return a + (b - a) * frac;
}

double theil_sen_slope(std::span<const double> t, std::span<const double> y) {
  size_t n = std::min(t.size(), y.size());
  // Thin evenly to bound the O(n²) pair count.
  size_t step = (n + kMaxTheilSenPoints - 1) / kMaxTheilSenPoints;
  if (step < 1) step = 1;
  std::vector<double> slopes;
  slopes.reserve((n / step) * (n / step) / 2 + 1);
  for (size_t i = 0; i < n; i += step) {
    for (size_t j = i + step; j < n; j += step) {
      double dt = t[j] - t[i];
      if (dt > 0) slopes.push_back((y[j] - y[i]) / dt);
      else if (dt < 0) slopes.push_back((y[i] - y[j]) / -dt);
    }
  }
  return median(std::move(slopes));
}

double r_squared(std::span<const double> t, std::span<const double> y) {
  size_t n = std::min(t.size(), y.size());
  if (n < 2) return 0;
  double mt = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mt += t[i];
    my += y[i];
  }
  mt /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double stt = 0, syy = 0, sty = 0;
  for (size_t i = 0; i < n; ++i) {
    double dt = t[i] - mt, dy = y[i] - my;
    stt += dt * dt;
    syy += dy * dy;
    sty += dt * dy;
  }
  if (stt <= 0 || syy <= 0) return 0;
  return std::clamp(sty * sty / (stt * syy), 0.0, 1.0);
}

}  // namespace leakwatch::analysis
