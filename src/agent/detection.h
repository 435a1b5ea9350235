// Growth detection over one target's recorded memory series.  Pure computation: no I/O and
// no clock, so every rule is tested on synthetic and recorded series.
//
//   anon(t) ─▶ lower envelope ─▶ Theil–Sen over rate_window ─▶ rate r(t) ─┐
//              (min over the last                                        ├─▶ r > baseline
//               rate_window / 2)                                         │   + sigma·spread?
//   quiet rates r(t') (not in a growth run) over baseline_window ─▶ baseline = median,
//   spread = max(1.4826·MAD, slope standard error, min_spread) ───────────┘
//
// * The leak signal is anonymous memory (+ swap): file-backed pages are cache the kernel
//   can reclaim, so their growth is reported (GrowthKind::kFile) but never triggers.
// * The lower envelope sees a garbage collector's sawtooth through its troughs (the live
//   set): a leak raises the troughs, a heap filling before its next collection does not.
// * Theil–Sen (median of pairwise slopes) ignores outliers; its standard error (residual
//   scatter) widens the band, so noise is not growth; the short window lets the rate fall
//   back once warm-up levels off.
// * Growth is "sustained" when r stays above baseline + sigma·spread for sustained_for.
//   The baseline comes only from rates outside growth runs, so a long leak never becomes
//   the baseline; with no such history the baseline is 0.
// * OOM risk = exp(-time_to_limit / horizon), from the current rate once growth has been
//   above baseline for oom_min_run_s; 0 when not growing.
// * Cost: for a quiet series the fits run once per rate_window / 12 (every sample at the
//   default 10 s interval); every sample while growth is above the band or the troughs
//   rise steeply; in between the last rates stand.  Quiet rates are kept at most every
//   baseline_window / 120 (120 rates an hour).  So sampling every second costs about what
//   every 10 s did, and a detector holds ~12 KiB at 1 Hz (the windows' points, the rates).
//   The file, RSS and VSZ rates (reported, never triggering) use a cheaper robust slope:
//   the median of slopes between points half a window apart.
// * A restart (new process instance) is a new detector: history never crosses instances.
#pragma once

#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "agent/config.h"

namespace leakwatch::agent {

struct Point {
  double t_s = 0;
  double value = 0;
};

// Median of pairwise slopes (value units per second).  Series longer than 32 points are
// first reduced to 32 block medians, which keeps the cost bounded and the estimate robust.
// nullopt with fewer than two distinct times.
std::optional<double> theil_sen_slope(std::span<const Point> points);
double median(std::vector<double> values);                 // 0 for an empty set
double robust_spread(const std::vector<double>& values);   // 1.4826 · MAD

// Seconds until `usage` reaches `limit` growing at `rate` bytes/s: 0 when already there,
// nullopt when not growing or no limit is known.
std::optional<double> time_to_limit_s(double usage, double limit, double rate);
// exp(-time_to_limit / horizon) in [0, 1]; 0 when not growing.
double oom_risk(double usage, double limit, double rate, double horizon_s);

struct MemoryPoint {
  double t_s = 0;
  double anon = 0;  // anonymous resident + swap, bytes: the leak signal
  double file = 0;  // file-backed resident (page cache)
  double rss = 0;
  double vsz = 0;
};

// What the target's memory grows into.
struct LimitContext {
  double usage = 0;  // bytes counted against the limit (without reclaimable page cache)
  double limit = 0;  // effective cgroup memory.max, else MemTotal; 0 = unknown
  bool from_cgroup = false;
};

enum class GrowthKind { kNone, kAnon, kFile, kMixed };
const char* to_string(GrowthKind kind);

struct DetectionParams {
  double rate_window_s = 120;
  double sustained_for_s = 300;
  double baseline_window_s = 3600;
  double sigma = 2;
  double min_spread = 1024;           // bytes/s
  double oom_horizon_s = 3600;
  double oom_min_run_s = 60;          // growth must be above baseline this long for risk
  double rate_threshold = 0;          // memory_growth_rate condition, bytes/s (0: none)
  double divergence_min_rate = 1048576.0 / 60;  // VSZ growth worth reporting: 1 MiB/min
  size_t min_points = 3;              // in the rate window, spanning half of it

  static DetectionParams from(const DetectionConfig& d, const TriggerConditions& t);
};

struct Evaluation {
  bool ready = false;             // enough history for a rate
  double t_s = 0;
  double anon = 0;                // current level (median of the last 3 points)
  double growth_rate = 0;         // anonymous memory, bytes/s
  double file_rate = 0;
  double rss_rate = 0;
  double vsz_rate = 0;
  double baseline_rate = 0;
  double spread = 0;              // used in the test, >= min_spread
  bool above = false;             // r > baseline + sigma·spread now
  bool above_threshold = false;   // ... and r > rate_threshold
  double above_for_s = 0;         // r > baseline + sigma·spread continuously for this long
  double above_threshold_for_s = 0;  // ... and r > rate_threshold
  bool sustained = false;         // above_for_s >= sustained_for
  double increase_bytes = 0;      // anonymous memory gained since the current run began
  GrowthKind kind = GrowthKind::kNone;
  bool vsz_rss_divergence = false;  // address space grows much faster than RSS
  double oom_risk = 0;
  std::optional<double> time_to_limit_s;
};

// One target's history and the evaluation of each new point.  Not thread-safe.
class GrowthDetector {
 public:
  explicit GrowthDetector(DetectionParams params);

  // Points must come in time order; one that does not is ignored.
  Evaluation add(const MemoryPoint& point, const LimitContext& limit);
  const Evaluation& last() const { return last_; }
  const DetectionParams& params() const { return params_; }
  // New thresholds (SIGHUP) keep the history.
  void set_params(const DetectionParams& params) {
    params_ = params;
    last_fit_.reset();
    baseline_cache_.reset();
  }

 private:
  struct RateSample {
    double t_s;
    double rate;
  };
  struct Stored {
    MemoryPoint p;
    double trough;  // lower envelope of anon at p.t_s
  };
  struct FitMark {
    double t_s;
    double trough;
  };
  struct BaselineCache {
    size_t n;
    double first_t;
    double computed_t;
    double rate, spread;
  };
  void baseline(double now, double& rate, double& spread);
  bool fit_due(double now, double trough) const;

  DetectionParams params_;
  std::deque<Stored> points_;     // the rate window and the envelope before it
  std::deque<RateSample> rates_;  // baseline_window + sustained_for of quiet rates
  std::optional<FitMark> last_fit_;
  std::optional<BaselineCache> baseline_cache_;
  std::optional<double> run_start_;        // r above baseline + sigma·spread since
  std::optional<double> threshold_start_;  // ... and above rate_threshold since
  double run_start_level_ = 0;
  Evaluation last_;
};

enum class TriggerReason { kGrowthRate, kRssIncrease, kOomRisk };
const char* to_string(TriggerReason reason);  // the configuration's condition name

// The trigger conditions that hold for an evaluation:
//   memory_growth_rate:     the rate has exceeded both the threshold and the baseline band
//                           for sustained_for, and exceeds the threshold now;
//   rss_increase_threshold: growth is sustained and the anonymous memory gained since the
//                           run began exceeds the threshold (warm-up that levels off never
//                           gets there: its run ends first);
//   oom_risk_score:         the risk exceeds the threshold.
std::vector<TriggerReason> check_triggers(const Evaluation& e, const TriggerConditions& c,
                                          const DetectionParams& p);

// Feeds a recorded series through a detector; one evaluation per point.
std::vector<Evaluation> replay(std::span<const MemoryPoint> series, const DetectionParams& p,
                               const LimitContext& limit = {});

}  // namespace leakwatch::agent
