// Leak or cache?  A verdict per stack from the time series of its outstanding bytes
// (StackHistory) and the ages of its surviving allocations.
//
//   leak       outstanding bytes keep rising through the session (robust slope clearly
//              positive and well above the noise, the latter part still rising) and the oldest
//              survivors age with the session;
//   cache      the series levels off or stays bounded: a warm-up then a plateau, a stable
//              set allocated early, or a structure that churns at a steady level;
//   transient  survivors are young (a few report intervals at most): freed soon;
//   unknown    too few points (< 3), nothing outstanding, or evidence that fits none of
//              the above (e.g. growth whose survivors are neither old nor young).
//
// Sampled series are noisy (one heavy weight entering or leaving makes a step), so slopes
// are Theil-Sen and levels are medians; the thresholds below are named in verdict.cpp.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "analysis/history.h"
#include "report/model.h"

namespace leakwatch::analysis {

// The ages of a stack's surviving allocations at the latest point (sampled ones when
// sampling).  count == 0 means none survive, or their ages are unknown.
struct SurvivorAges {
  double oldest_s = 0;
  double median_s = 0;
  uint64_t count = 0;

  static SurvivorAges from_ages(std::span<const double> ages_s);
};

struct VerdictResult {
  report::Verdict verdict = report::Verdict::kUnknown;
  double score = 0;               // confidence in the verdict, [0, 1]; 0 for unknown
  std::string reason;             // one line with the numbers behind the verdict
  double growth_bytes_per_s = 0;  // Theil-Sen slope of outstanding bytes (0 with < 2 points)
  double r2 = 0;                  // R² of a straight line through the series
};

// What the classifier measures, exposed for tests and for explaining a verdict.
struct TrendFeatures {
  size_t points = 0;
  double span_s = 0;              // last t - first t
  double interval_s = 0;          // report interval
  double window_s = 0;            // how long the stack could have had survivors
  double last_bytes = 0;
  double peak_bytes = 0;
  double level_bytes = 0;         // median of the latter half (>= 1), the scale for "flat"
  double growth_bytes_per_s = 0;  // Theil-Sen over all points
  double r2 = 0;
  double noise_bytes = 0;         // robust sd of the residuals around the Theil-Sen line
  double growth_to_noise = 0;     // growth * span / noise
  double rel_growth = 0;          // growth * span / level
  double early_rel_growth = 0;    // first half: slope * its span / level
  double late_rel_growth = 0;     // latter half, likewise
  double late_ratio = 0;          // latter-half slope / overall slope (when the latter > 0)
  double tail_ratio = 0;          // last-quarter slope / overall slope
  size_t tail_points = 0;
  double early_high = 0;          // 90th percentile of the first half
  double late_high = 0;           // 90th percentile of the latter half
  double count_level = 0;         // median count over the latter half
};

// interval_s: the report interval (0: taken from the spacing of the points);
// session_s: time since the session started (0: the last point's time).
[[nodiscard]] TrendFeatures trend_features(std::span<const SeriesPoint> points,
                                           double interval_s, double session_s);

[[nodiscard]] VerdictResult classify_series(std::span<const SeriesPoint> points,
                                            double interval_s, const SurvivorAges& ages,
                                            double session_s);

[[nodiscard]] VerdictResult classify(const StackHistory& history, const SurvivorAges& ages,
                                     double session_s);

// "12.3 KiB", "512 B", "4.0 MiB": the numbers in reasons.
[[nodiscard]] std::string format_bytes(double bytes);

}  // namespace leakwatch::analysis
