// The gamma distribution's CDF and quantile, for confidence intervals of weighted sums of
// rare events (sampling.h).  Pure functions; thread-safe.
#pragma once

namespace leakwatch::analysis {

// Regularized lower incomplete gamma function P(a, x) = Pr[Gamma(a, 1) <= x]; a > 0.
[[nodiscard]] double gamma_p(double a, double x);

// The q-quantile of Gamma(shape, scale): x with Pr[X <= x] = q, for q in (0, 1).
// Accurate to ~1e-10 relative (~1e-6 above shape 1000, where it is Wilson-Hilferty).  0 for shape <= 0 or scale <= 0.
[[nodiscard]] double gamma_quantile(double q, double shape, double scale);

}  // namespace leakwatch::analysis
