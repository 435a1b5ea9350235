// The gamma CDF and quantile behind the sampling intervals, against closed forms and
// published chi-square table values (chi2(k) = 2 * Gamma(k/2, 1)).
#include "analysis/gamma.h"

#include <cmath>

#include <gtest/gtest.h>

namespace leakwatch::analysis {
namespace {

TEST(Gamma, CdfMatchesClosedForms) {
  // Gamma(1) is Exp(1).
  for (double x : {0.01, 0.5, 2.0, 30.0}) EXPECT_NEAR(gamma_p(1, x), -std::expm1(-x), 1e-13);
  // Gamma(2): 1 - (1 + x) e^-x.
  for (double x : {0.1, 1.0, 5.0}) EXPECT_NEAR(gamma_p(2, x), 1 - (1 + x) * std::exp(-x), 1e-13);
  // Gamma(1/2): erf(sqrt(x)).
  for (double x : {0.01, 0.7, 9.0}) EXPECT_NEAR(gamma_p(0.5, x), std::erf(std::sqrt(x)), 1e-12);
  EXPECT_EQ(gamma_p(3, 0), 0);
}

TEST(Gamma, QuantilesMatchChiSquareTables) {
  // chi2 quantiles from the standard tables (4-5 significant digits there).
  EXPECT_NEAR(2 * gamma_quantile(0.975, 1, 1), 7.3778, 1e-4);    // 2 dof
  EXPECT_NEAR(2 * gamma_quantile(0.025, 5, 1), 3.2470, 1e-4);    // 10 dof
  EXPECT_NEAR(2 * gamma_quantile(0.975, 6, 1), 23.3367, 1e-4);   // 12 dof
  EXPECT_NEAR(2 * gamma_quantile(0.5, 0.5, 1), 0.45494, 1e-5);   // 1 dof
  EXPECT_NEAR(2 * gamma_quantile(0.975, 50, 1), 129.561, 1e-3);  // 100 dof
  EXPECT_NEAR(gamma_quantile(0.5, 1, 3), 3 * std::log(2.0), 1e-12);  // scale
}

TEST(Gamma, QuantileInvertsTheCdf) {
  for (double shape : {0.01, 0.3, 1.0, 3.7, 50.0, 999.0})
    for (double q : {0.001, 0.025, 0.5, 0.975, 0.999})
      EXPECT_NEAR(gamma_p(shape, gamma_quantile(q, shape, 1)), q, 1e-9) << shape << " " << q;
  // Above shape 1000: Wilson-Hilferty, compared with the normal limit (shape -+ z sqrt).
  EXPECT_NEAR(gamma_quantile(0.975, 1e6, 1), 1e6 + 1.959964 * 1e3, 1.0);
  EXPECT_EQ(gamma_quantile(0.5, 0, 1), 0);
}

}  // namespace
}  // namespace leakwatch::analysis
