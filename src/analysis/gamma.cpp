#include "analysis/gamma.h"

#include <algorithm>
#include <cmath>

namespace leakwatch::analysis {
namespace {

constexpr int kMaxIterations = 500;
constexpr double kEpsilon = 1e-15;
constexpr double kWilsonHilfertyShape = 1000;

// P(a, x) by its power series; converges quickly for x < a + 1.
double gamma_p_series(double a, double x) {
  double term = 1 / a, sum = term;
  for (int n = 1; n < kMaxIterations; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * kEpsilon) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Q(a, x) = 1 - P(a, x) by its continued fraction (modified Lentz); for x >= a + 1.
double gamma_q_fraction(double a, double x) {
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, h = d;
  for (int i = 1; i < kMaxIterations; ++i) {
    double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < kEpsilon) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

// Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9), used only
// for the starting point of the gamma quantile's Newton iteration.
double normal_quantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00, 2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  if (p < 0.02425) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - 0.02425) return -normal_quantile(1 - p);
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

}  // namespace

double gamma_p(double a, double x) {
  if (a <= 0 || x <= 0) return 0;
  if (x < a + 1) return gamma_p_series(a, x);
  return 1 - gamma_q_fraction(a, x);
}

double gamma_quantile(double q, double shape, double scale) {
  if (shape <= 0 || scale <= 0 || q <= 0) return 0;
  if (q >= 1) return INFINITY;
  // Start from Wilson-Hilferty (chi-square with 2*shape degrees of freedom, halved).
  double z = normal_quantile(q);
  double h = 1 / (9 * shape);
  double x = shape * std::pow(std::max(1 - h + z * std::sqrt(h), 1e-3), 3);
  // Wilson-Hilferty's relative error falls like shape^-1.5 (< 1e-6 here), and the series
  // and continued fraction need ~sqrt(shape) terms: use it as is for large shapes.
  if (shape > kWilsonHilfertyShape) return x * scale;
  // For small shapes the lower tail is ~ x^a / Gamma(a + 1): invert that instead.
  if (shape < 1) x = std::max(std::exp((std::log(q) + std::lgamma(shape + 1)) / shape), 1e-300);
  // Safeguarded Newton on P(a, x) = q, keeping a bracket [lo, hi] for bisection fallback.
  double lo = 0, hi = INFINITY;
  for (int i = 0; i < 200; ++i) {
    double f = gamma_p(shape, x) - q;
    if (f < 0) lo = x;
    else hi = x;
    if (std::fabs(f) < 1e-13) break;
    double density = std::exp((shape - 1) * std::log(x) - x - std::lgamma(shape));
    double next = density > 0 ? x - f / density : NAN;
    if (!(next > lo && next < hi) || !std::isfinite(next))
      next = std::isfinite(hi) ? (lo + hi) / 2 : std::max(2 * x, 1e-300);
    if (std::fabs(next - x) <= 1e-14 * x) {
      x = next;
      break;
    }
    x = next;
  }
  return x * scale;
}

}  // namespace leakwatch::analysis
