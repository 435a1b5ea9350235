#include "analysis/verdict.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "analysis/trend.h"

namespace leakwatch::analysis {
namespace {

// ---- thresholds -------------------------------------------------------------------------

// Fewer points than this cannot tell a trend from a step: the verdict is unknown.
constexpr size_t kMinPoints = 3;

// Leak: over the series the robust slope must add at least this fraction of the late level.
// 10% keeps a leak sitting on top of a large static block of the same stack, while noise on
// a plateau (whose Theil-Sen slope is ~0) stays well below it.
constexpr double kLeakMinRelGrowth = 0.1;
// Leak: the growth over the series must stand out of the noise around the line: at least
// this many robust standard deviations of the residuals (1.4826 * their median absolute
// deviation, around the Theil-Sen line).  This is the fit test; it is R² made robust: with
// Gaussian noise, 3 sd corresponds to R² ~ 0.43, and a steady leak (R² 0.9+, even sampled,
// whose estimate is a rising staircase of K steps: ~3.5 K sd) passes by far, while a leak
// buried in request churn of a third of its size still passes, and one burst of outliers
// cannot fail it as it would least squares.  R² is still reported.
constexpr double kLeakMinGrowthToNoise = 3.0;
// R² at which the fit counts as excellent in the score.
constexpr double kGoodR2 = 0.95;
// Leak: the latter half must still rise at this fraction of the whole-series slope; a
// warm-up that stopped has ~0 here.
constexpr double kLeakMinLateRatio = 0.3;
// Leak: nor may the last quarter have stopped (a warm-up that ran for 60-75% of the
// session still looks rising over the latter half).  Lower than the half's ratio because a
// quarter of a sampled staircase has few steps; only checked with enough points in it and
// enough expected steps (kMinExpectedSteps).
constexpr double kLeakMinTailRatio = 0.15;
constexpr size_t kMinTailPoints = 4;
// Leak: survivors age with the session: the oldest is at least half the stack's window
// (a leak that leaked from the start has oldest ~ window; uniform ages give a median of
// half the window, sampled or not) and the median at least this fraction of it.
constexpr double kLeakMinOldestRatio = 0.5;
constexpr double kLeakMinMedianRatio = 0.15;

// Sampled series are staircases: a flat stretch means "stopped" only if a continuing leak
// would have put steps in it.  With K survivors spread over the window, a stretch covering
// a fraction f of it should hold K f of them; a flat stretch counts as evidence only when
// that is at least this many (P(no step) = e^-3 = 5% under a continuing leak).  Exact data
// has K = all survivors, so this only bites when few allocations were sampled.
constexpr double kMinExpectedSteps = 3;
// Leak: at least this many survivors (sampled ones when sampling); with fewer, growth is a
// step or two and the verdict stays unknown.
constexpr uint64_t kLeakMinSurvivors = 3;
// Stopped by ages: the youngest survivor is so old that a leak still going on (survivor
// ages uniform over the window) would have produced one that old with probability
// (1 - youngest/window)^K below this.  0.1% keeps real leaks (which trip it 0.1% of the
// time) and, with 8 sampled survivors, catches a warm-up whose last survivor was made 58%
// of the window ago (0.42^8 = 1e-3).
constexpr double kAgesStoppedP = 1e-3;
// ... and it must have stopped a while ago: at least this fraction of the window.  With
// thousands of survivors the test above would otherwise flag a gap of a fraction of a
// second (e.g. the session ending just after the last allocation of a report interval).
constexpr double kAgesStoppedMinFraction = 0.2;

// Flat: the latter half changes by at most this fraction of the level.
constexpr double kFlatMaxRelGrowth = 0.05;
// Bounded: the latter half's 90th percentile is at most this much above the first half's;
// catches plateaus whose noise or period (a sawtooth) moves the slope of a half.
constexpr double kBoundedMargin = 0.1;
// Cache "levels off" (rather than "stable set"): the first half rose by this much.
constexpr double kWarmupMinRelGrowth = 0.25;

// Transient: the oldest survivor is younger than this many report intervals (and than this
// fraction of the window): allocations are freed within a few intervals, not kept.
constexpr double kTransientMaxIntervals = 3;
constexpr double kTransientMaxWindowFraction = 0.25;

// Scores: full confidence needs this many points and (sampled) survivors.
constexpr double kConfidentPoints = 12;
constexpr double kConfidentSurvivors = 10;

// -----------------------------------------------------------------------------------------

double ramp(double x, double lo, double hi) {
  if (!(hi > lo)) return x >= hi ? 1.0 : 0.0;
  return std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
}

std::string format_seconds(double s) {
  return s >= 100 ? fmt::format("{:.0f} s", s) : fmt::format("{:.1f} s", s);
}

std::string format_rate(double bytes_per_s) {
  return (bytes_per_s < 0 ? "-" : "") + format_bytes(std::fabs(bytes_per_s)) + "/s";
}

struct Window {
  std::vector<double> t, bytes, count;
};

// Points with t in [from, to].
Window select(std::span<const SeriesPoint> points, double from, double to) {
  Window w;
  for (const SeriesPoint& p : points) {
    if (p.t_s < from || p.t_s > to) continue;
    w.t.push_back(p.t_s);
    w.bytes.push_back(p.bytes);
    w.count.push_back(p.count);
  }
  return w;
}

double span_of(const Window& w) { return w.t.empty() ? 0 : w.t.back() - w.t.front(); }

// Slope between the medians of the window's first and last thirds.  Theil-Sen treats the
// few steps of a sparsely sampled staircase as outliers (most pairs of points do not
// straddle a step, so the median pairwise slope is 0 although the level rose); comparing
// robust levels at both ends sees the rise, and is still robust to single wild points.
double level_change_slope(const Window& w) {
  size_t n = w.t.size();
  if (n < 2) return 0;
  size_t third = std::max<size_t>(1, n / 3);
  auto part = [&](size_t from, size_t to) {
    return std::pair{median({w.t.begin() + static_cast<ptrdiff_t>(from),
                             w.t.begin() + static_cast<ptrdiff_t>(to)}),
                     median({w.bytes.begin() + static_cast<ptrdiff_t>(from),
                             w.bytes.begin() + static_cast<ptrdiff_t>(to)})};
  };
  auto [t_first, y_first] = part(0, third);
  auto [t_last, y_last] = part(n - third, n);
  return t_last > t_first ? (y_last - y_first) / (t_last - t_first) : 0;
}

// Confidence from the amount of evidence: 0.6 with the minimum, 1 with plenty.
double confidence(const TrendFeatures& f, const SurvivorAges& ages) {
  double points = ramp(static_cast<double>(f.points), kMinPoints, kConfidentPoints);
  double survivors = ramp(static_cast<double>(ages.count), 1, kConfidentSurvivors);
  return 0.6 + 0.4 * std::min(points, survivors);
}

}  // namespace

std::string format_bytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = bytes;
  size_t unit = 0;
  while (std::fabs(v) >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} B", v) : fmt::format("{:.1f} {}", v, kUnits[unit]);
}

SurvivorAges SurvivorAges::from_ages(std::span<const double> ages_s) {
  SurvivorAges a;
  if (ages_s.empty()) return a;
  a.count = ages_s.size();
  auto [youngest, oldest] = std::minmax_element(ages_s.begin(), ages_s.end());
  a.oldest_s = *oldest;
  a.youngest_s = *youngest;
  a.median_s = median(std::vector<double>(ages_s.begin(), ages_s.end()));
  return a;
}

TrendFeatures trend_features(std::span<const SeriesPoint> points, double interval_s,
                             double session_s) {
  TrendFeatures f;
  f.points = points.size();
  if (points.empty()) return f;
  Window all = select(points, -INFINITY, INFINITY);
  double t0 = all.t.front(), t1 = all.t.back();
  f.span_s = t1 - t0;
  f.interval_s = interval_s > 0 ? interval_s
                 : points.size() >= 2 ? f.span_s / static_cast<double>(points.size() - 1)
                                      : t0;
  double session = std::max(session_s, t1);
  f.last_bytes = all.bytes.back();
  f.peak_bytes = *std::max_element(all.bytes.begin(), all.bytes.end());

  // The stack's survivors can be as old as the interval before its first non-zero point.
  double first_nonzero = t1;
  for (const SeriesPoint& p : points) {
    if (p.bytes > 0) {
      first_nonzero = p.t_s;
      break;
    }
  }
  f.window_s = std::clamp(session - (first_nonzero - f.interval_s), std::min(f.interval_s, session),
                          session);

  Window early = select(points, t0, t0 + f.span_s / 2);
  Window late = select(points, t0 + f.span_s / 2, t1);
  Window tail = select(points, t0 + f.span_s * 0.75, t1);
  // The scale for "how much": the latter half's median, but not below a tenth of the peak
  // (a mostly-zero series) nor 1 byte.
  f.level_bytes = std::max({median(late.bytes), 0.1 * f.peak_bytes, 1.0});
  f.count_level = median(late.count);

  f.growth_bytes_per_s = theil_sen_slope(all.t, all.bytes);
  f.r2 = r_squared(all.t, all.bytes);
  // Robust noise: residuals around the Theil-Sen line (through the median point).
  std::vector<double> residuals(all.t.size());
  for (size_t i = 0; i < all.t.size(); ++i)
    residuals[i] = all.bytes[i] - f.growth_bytes_per_s * all.t[i];
  double offset = median(residuals);
  for (double& e : residuals) e = std::fabs(e - offset);
  f.noise_bytes = 1.4826 * median(residuals);
  f.growth_to_noise = f.growth_bytes_per_s * f.span_s /
                      std::max(f.noise_bytes, 1e-9 * f.level_bytes);
  f.rel_growth = f.growth_bytes_per_s * f.span_s / f.level_bytes;
  double early_slope = theil_sen_slope(early.t, early.bytes);
  double late_slope = theil_sen_slope(late.t, late.bytes);
  double tail_slope = theil_sen_slope(tail.t, tail.bytes);
  f.early_rel_growth = early_slope * span_of(early) / f.level_bytes;
  f.late_rel_growth = late_slope * span_of(late) / f.level_bytes;
  if (f.growth_bytes_per_s > 0) {
    f.late_ratio = std::max(late_slope, level_change_slope(late)) / f.growth_bytes_per_s;
    f.tail_ratio = tail_slope / f.growth_bytes_per_s;
    f.tail_step_ratio = std::max(tail_slope, level_change_slope(tail)) / f.growth_bytes_per_s;
  }
  f.tail_points = tail.t.size();
  f.late_span_s = span_of(late);
  f.tail_span_s = span_of(tail);
  f.early_high = quantile(early.bytes, 0.9);
  f.late_high = quantile(late.bytes, 0.9);
  return f;
}

VerdictResult classify_series(std::span<const SeriesPoint> points, double interval_s,
                              const SurvivorAges& ages, double session_s) {
  TrendFeatures f = trend_features(points, interval_s, session_s);
  VerdictResult r;
  r.growth_bytes_per_s = f.growth_bytes_per_s;
  r.r2 = f.r2;
  const std::string growth = fmt::format("grows {} over {} (R²={:.2f})",
                                         format_rate(f.growth_bytes_per_s),
                                         format_seconds(f.span_s), f.r2);
  const bool ages_known = ages.count > 0;
  const std::string oldest =
      ages_known ? fmt::format("oldest survivor {}", format_seconds(ages.oldest_s))
                 : std::string("survivor ages unknown");

  if (f.points < kMinPoints) {
    r.reason = fmt::format("only {} point{} (need {})", f.points, f.points == 1 ? "" : "s",
                           kMinPoints);
    if (f.points >= 2) r.reason += fmt::format(": {}", format_rate(f.growth_bytes_per_s));
    return r;
  }
  if (f.peak_bytes <= 0) {
    r.reason = fmt::format("nothing outstanding over {}", format_seconds(f.span_s));
    return r;
  }
  const double conf = confidence(f, ages);

  // Transient: everything freed by the end, or only young survivors.
  if (!ages_known && f.last_bytes <= 0) {
    r.verdict = report::Verdict::kTransient;
    r.score = conf;
    r.reason = fmt::format("all freed by the end (peak {})", format_bytes(f.peak_bytes));
    return r;
  }
  const double young_limit = std::min(kTransientMaxIntervals * f.interval_s,
                                      kTransientMaxWindowFraction * f.window_s);
  const bool growing = f.rel_growth >= kLeakMinRelGrowth;
  if (ages_known && ages.oldest_s <= young_limit) {
    r.verdict = report::Verdict::kTransient;
    r.score = (0.5 + 0.5 * (1 - ramp(ages.oldest_s, 0, young_limit))) * (growing ? 0.7 : 1.0) *
              conf;
    r.reason = fmt::format("survivors young: oldest {} (interval {}), {} outstanding",
                           format_seconds(ages.oldest_s), format_seconds(f.interval_s),
                           format_bytes(f.last_bytes));
    if (growing) r.reason += fmt::format(", {}", format_rate(f.growth_bytes_per_s));
    return r;
  }

  // Leak.
  const double oldest_ratio = ages_known ? ages.oldest_s / f.window_s : 0;
  const double median_ratio = ages_known ? ages.median_s / f.window_s : 0;
  // How many steps a continuing leak would put in a fraction of the window.
  const double survivors = ages_known ? static_cast<double>(ages.count) : INFINITY;
  auto enough_steps = [&](double span_s) {
    return survivors * std::min(span_s / f.window_s, 1.0) >= kMinExpectedSteps;
  };
  const bool half_evidence = enough_steps(f.late_span_s);
  const bool late_stopped = half_evidence && f.late_ratio < kLeakMinLateRatio;
  // In the last quarter a dense series (at least one survivor per point: effectively
  // continuous) is judged by Theil-Sen, which sees a plateau in its last part; a sparse
  // staircase by its level change, so that the quarter's one or two steps count.
  const bool tail_dense = survivors * std::min(f.tail_span_s / f.window_s, 1.0) >=
                          static_cast<double>(f.tail_points);
  const double tail_ratio = tail_dense ? f.tail_ratio : f.tail_step_ratio;
  const bool tail_stopped = f.growth_bytes_per_s > 0 && f.tail_points >= kMinTailPoints &&
                            enough_steps(f.tail_span_s) && tail_ratio < kLeakMinTailRatio;
  const bool ages_stopped =
      ages_known && ages.youngest_s >= kAgesStoppedMinFraction * f.window_s &&
      (ages.youngest_s >= f.window_s ||
       survivors * std::log1p(-ages.youngest_s / f.window_s) < std::log(kAgesStoppedP));
  const bool fits = f.growth_to_noise >= kLeakMinGrowthToNoise;
  const bool rising_late = !late_stopped && !tail_stopped && !ages_stopped;
  const bool aged = !ages_known ||
                    (oldest_ratio >= kLeakMinOldestRatio && median_ratio >= kLeakMinMedianRatio);
  const bool enough_survivors = !ages_known || ages.count >= kLeakMinSurvivors;
  if (growing && fits && rising_late && aged && enough_survivors) {
    double evidence = (ramp(f.rel_growth, kLeakMinRelGrowth, 0.5) + ramp(f.r2, 0.5, kGoodR2) +
                       ramp(f.late_ratio, kLeakMinLateRatio, 0.8) +
                       ramp(oldest_ratio, kLeakMinOldestRatio, 0.9)) / 4;
    r.verdict = report::Verdict::kLeak;
    r.score = (0.5 + 0.5 * evidence) * conf;
    r.reason = fmt::format("{}, {}", growth, oldest);
    return r;
  }

  // Cache: the latter half is flat, or no higher than the first (bounded), with enough
  // samples for that to mean something; or the ages say accumulation stopped.
  const bool flat = (half_evidence && std::fabs(f.late_rel_growth) <= kFlatMaxRelGrowth) ||
                    tail_stopped || ages_stopped;
  const bool bounded = half_evidence && f.late_high <= (1 + kBoundedMargin) * f.early_high;
  if (flat || bounded) {
    double flatness = std::max(1 - ramp(std::fabs(f.late_rel_growth), 0, 2 * kFlatMaxRelGrowth),
                               bounded ? 1 - ramp(f.late_high / std::max(f.early_high, 1.0) - 1,
                                                  0, 2 * kBoundedMargin)
                                       : 0.0);
    r.verdict = report::Verdict::kCache;
    r.score = (0.5 + 0.5 * flatness) * conf;
    const std::string late_change = fmt::format("{:+.1f}%", 100 * f.late_rel_growth);
    if (ages_known && oldest_ratio < kLeakMinOldestRatio) {
      r.reason = fmt::format("bounded at {} (peak {}) with churn: {} of {}",
                             format_bytes(f.level_bytes), format_bytes(f.peak_bytes), oldest,
                             format_seconds(f.window_s));
    } else if (f.early_rel_growth >= kWarmupMinRelGrowth ||
               ((tail_stopped || ages_stopped) && f.rel_growth >= kLeakMinRelGrowth)) {
      r.reason = fmt::format("levels off at {} after rising (latter half {}), {}",
                             format_bytes(f.level_bytes), late_change, oldest);
    } else if (ages_known) {
      r.reason = fmt::format("stable set: {} in {:.0f} allocations, flat over {} ({}), {}",
                             format_bytes(f.level_bytes), f.count_level,
                             format_seconds(f.span_s), late_change, oldest);
    } else {
      r.reason = fmt::format("bounded at {} (peak {}), {}", format_bytes(f.level_bytes),
                             format_bytes(f.peak_bytes), oldest);
    }
    return r;
  }

  // Unknown: say what did not fit.
  std::string why;
  if (ages_known && (!half_evidence || !enough_survivors))
    why = fmt::format("only {} sampled survivor{}: too few to tell", ages.count,
                      ages.count == 1 ? "" : "s");
  else if (!growing)
    why = fmt::format("changes by only {:.0f}% of its level", 100 * f.rel_growth);
  else if (!fits)
    why = fmt::format("noise of {} hides it", format_bytes(f.noise_bytes));
  else if (!rising_late)
    why = fmt::format("the latter part rises at only {:.0f}% of that rate",
                      100 * std::min(f.late_ratio, tail_ratio));
  else
    why = fmt::format("the {} of {} is not old enough for a leak", oldest,
                      format_seconds(f.window_s));
  r.reason = fmt::format("{} but {}", growth, why);
  return r;
}

VerdictResult classify(const StackHistory& history, const SurvivorAges& ages,
                       double session_s) {
  std::vector<SeriesPoint> points = history.points();
  return classify_series(points, history.interval_s(), ages, session_s);
}

}  // namespace leakwatch::analysis
