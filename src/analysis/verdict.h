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
// are Theil-Sen, levels are medians, the fit is judged against a robust noise scale, and a
// flat stretch only counts as "stopped" when a continuing leak would have put enough sampled
// allocations in it.  The thresholds are named and explained in verdict.cpp.
//
// Measured over 100 seeds per row (60 s sessions, 1 s interval, simulated workloads as in
// tests/unit/analysis_verdict_test.cpp; "samples" = sampled survivors at the end):
//   workload                               exact      R = 64 KiB          R = 512 KiB
//   leak 10 x 1 KiB/s                      leak 100   leak 96 (9 samples)  unknown 87 (1)
//   leak 50 x 1 KiB/s                      leak 100   leak 100 (46)        leak 90 (6)
//   leak 200 x 1 KiB/s                     leak 100   leak 100 (186)       leak 98 (22)
//   leak 2 x 64 KiB/s                      leak 100   leak 100 (75)        leak 93 (14)
//   warm-up 20 s, then flat                cache 100  cache 100 (61)       cache 88 (8)
//   pool of 256 x 16 KiB made at start     cache 100  cache 100 (56)       cache 100 (8)
//   LRU, entries live 5 s                  cache 100  cache 91 (16)        transient/unknown (2)
//   LRU, entries live 50 s of the 60       cache 80   leak 62 (154)        leak 56 (20)
//   requests living 50 ms (30 seeds)       transient  transient            transient 93
// The errors that remain are with few samples (a leak's latter half without a sampled step
// looks flat) and caches whose entries live nearly as long as the session, which no series
// can tell from a leak until the session outlives them: run longer.
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
  double youngest_s = 0;  // 0 when unknown: then it gives no evidence that growth stopped

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
  // Latter-half slope / overall slope (when the latter > 0); the latter-half slope is the
  // larger of its Theil-Sen slope and the slope between the medians of its first and last
  // thirds (which sees the few steps of a sparsely sampled staircase).
  double late_ratio = 0;
  double tail_ratio = 0;          // last quarter: Theil-Sen slope / overall slope
  double tail_step_ratio = 0;     // last quarter: the larger of both slopes / overall
  size_t tail_points = 0;
  double late_span_s = 0;         // time covered by the latter half / the last quarter
  double tail_span_s = 0;
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
