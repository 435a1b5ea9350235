#include "agent/detection.h"

#include <algorithm>
#include <cmath>

namespace leakwatch::agent {
namespace {

constexpr size_t kMaxTheilSenPoints = 32;

// Scratch space reused by every fit on this thread: once warm, a fit allocates nothing
// (the agent fits thousands of series a second).
struct Scratch {
  std::vector<Point> thinned, anon, file, rss, vsz;
  std::vector<double> a, b, slopes, resid;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Median of v, reordering it.
double median_in_place(std::vector<double>& v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  const double lo = *std::max_element(v.begin(), v.begin() + static_cast<long>(mid));
  return (lo + hi) / 2;
}

// 1.4826 · MAD of v (reordered), with `dev` as working space.
double spread_in_place(std::vector<double>& v, std::vector<double>& dev) {
  if (v.size() < 2) return 0;
  const double m = median_in_place(v);
  dev.clear();
  for (double x : v) dev.push_back(std::fabs(x - m));
  return 1.4826 * median_in_place(dev);
}

// Reduces a long series to block medians (time and value separately): a robust summary
// that keeps Theil–Sen at O(32²).
void thin(std::span<const Point> pts, Scratch& s) {
  s.thinned.clear();
  if (pts.size() <= kMaxTheilSenPoints) {
    s.thinned.assign(pts.begin(), pts.end());
    return;
  }
  for (size_t b = 0; b < kMaxTheilSenPoints; ++b) {
    const size_t lo = b * pts.size() / kMaxTheilSenPoints;
    const size_t hi = (b + 1) * pts.size() / kMaxTheilSenPoints;
    s.a.clear();
    s.b.clear();
    for (size_t i = lo; i < hi; ++i) s.a.push_back(pts[i].t_s), s.b.push_back(pts[i].value);
    s.thinned.push_back({median_in_place(s.a), median_in_place(s.b)});
  }
}

std::optional<double> theil_sen(std::span<const Point> points, Scratch& s) {
  thin(points, s);
  const std::vector<Point>& pts = s.thinned;
  s.slopes.clear();
  for (size_t i = 0; i < pts.size(); ++i)
    for (size_t j = i + 1; j < pts.size(); ++j) {
      const double dt = pts[j].t_s - pts[i].t_s;
      if (dt != 0) s.slopes.push_back((pts[j].value - pts[i].value) / dt);
    }
  if (s.slopes.empty()) return std::nullopt;
  return median_in_place(s.slopes);
}

// A cheaper robust slope for the secondary series (file, RSS, VSZ): the median of the
// slopes between each point of the first half and its partner half a window later.  O(n),
// as robust to outliers as a median of n/2 slopes.
std::optional<double> lag_slope(std::span<const Point> pts, Scratch& s) {
  const size_t half = pts.size() / 2;
  s.slopes.clear();
  for (size_t i = 0; i < half; ++i) {
    const double dt = pts[i + half].t_s - pts[i].t_s;
    if (dt != 0) s.slopes.push_back((pts[i + half].value - pts[i].value) / dt);
  }
  if (s.slopes.empty()) return std::nullopt;
  return median_in_place(s.slopes);
}

struct Fit {
  double slope = 0;
  double slope_stderr = 0;  // robust standard error: spread of residuals / sqrt(Sxx)
};

// Theil–Sen slope plus how uncertain it is given the scatter around the line.  A sawtooth
// or a noisy series has large residuals and so a large error: its slope is not trusted.
std::optional<Fit> robust_fit(std::span<const Point> pts, Scratch& s) {
  auto slope = theil_sen(pts, s);
  if (!slope) return std::nullopt;
  Fit f;
  f.slope = *slope;
  s.resid.clear();
  double mean_t = 0;
  for (const Point& p : pts) {
    s.resid.push_back(p.value - f.slope * p.t_s);
    mean_t += p.t_s;
  }
  mean_t /= static_cast<double>(pts.size());
  double sxx = 0;
  for (const Point& p : pts) sxx += (p.t_s - mean_t) * (p.t_s - mean_t);
  const double sigma = spread_in_place(s.resid, s.a);
  f.slope_stderr = sxx > 0 ? sigma / std::sqrt(sxx) : 0;
  return f;
}

}  // namespace

double median(std::vector<double> v) { return median_in_place(v); }

double robust_spread(const std::vector<double>& values) {
  std::vector<double> v = values, dev;
  return spread_in_place(v, dev);
}

std::optional<double> theil_sen_slope(std::span<const Point> points) {
  return theil_sen(points, scratch());
}

std::optional<double> time_to_limit_s(double usage, double limit, double rate) {
  if (limit <= 0) return std::nullopt;
  if (usage >= limit) return 0.0;
  if (rate <= 0) return std::nullopt;
  return (limit - usage) / rate;
}

double oom_risk(double usage, double limit, double rate, double horizon_s) {
  if (rate <= 0 || horizon_s <= 0) return 0;
  auto ttl = time_to_limit_s(usage, limit, rate);
  if (!ttl) return 0;
  return std::exp(-*ttl / horizon_s);
}

const char* to_string(GrowthKind kind) {
  switch (kind) {
    case GrowthKind::kAnon: return "anon";
    case GrowthKind::kFile: return "file_cache";
    case GrowthKind::kMixed: return "anon+file_cache";
    case GrowthKind::kNone: break;
  }
  return "none";
}

DetectionParams DetectionParams::from(const DetectionConfig& d, const TriggerConditions& t) {
  DetectionParams p;
  p.rate_window_s = d.rate_window_s;
  p.sustained_for_s = d.sustained_for_s;
  p.baseline_window_s = d.baseline_window_s;
  p.sigma = d.sigma;
  p.min_spread = d.min_spread_bytes_per_s;
  p.oom_horizon_s = d.oom_horizon_s;
  p.oom_min_run_s = std::min(60.0, d.sustained_for_s);
  p.rate_threshold = t.memory_growth_rate ? t.memory_growth_rate->value : 0;
  return p;
}

GrowthDetector::GrowthDetector(DetectionParams params) : params_(params) {}

// Baseline and spread from the rates that were not part of a growth run (so a leak never
// becomes the norm), over the last baseline_window.  No such history: baseline 0.  The
// median and spread are kept until the set of rates changes (with 64 or more rates, for at
// most baseline_window / 60).
void GrowthDetector::baseline(double now, double& rate, double& spread) {
  size_t first = 0;
  while (first < rates_.size() && rates_[first].t_s < now - params_.baseline_window_s) ++first;
  const size_t n = rates_.size() - first;
  const double first_t = n ? rates_[first].t_s : 0;
  // With many rates the figures move slowly: refreshed at most every baseline_window / 60.
  const bool changed =
      !baseline_cache_ || baseline_cache_->n != n || baseline_cache_->first_t != first_t;
  if (changed && (!baseline_cache_ || n < 64 ||
                  now - baseline_cache_->computed_t >= params_.baseline_window_s / 60)) {
    BaselineCache c{n, first_t, now, 0, 0};
    if (n >= 5) {
      Scratch& s = scratch();
      s.b.clear();
      for (size_t i = first; i < rates_.size(); ++i) s.b.push_back(rates_[i].rate);
      c.rate = std::max(0.0, median_in_place(s.b));
      c.spread = spread_in_place(s.b, s.a);
    }
    baseline_cache_ = c;
  }
  rate = baseline_cache_->rate;
  spread = std::max(baseline_cache_->spread, params_.min_spread);
}

// True when the robust fit must run this time: no fit yet, the last one is older than a
// twelfth of the rate window, a growth run is under way, or the troughs rose steeply since
// the last fit.  Otherwise the last fit's
// rates stand (a quiet process costs its fit once per rate_window / 12, not every sample).
bool GrowthDetector::fit_due(double now, double trough) const {
  if (!last_fit_ || last_.above || run_start_ || threshold_start_) return true;
  const double refit_s = params_.rate_window_s / 12;
  if (now - last_fit_->t_s >= 0.75 * refit_s) return true;
  // A rise that half the band would take refit_s to make: steep growth is fitted at once,
  // anything slower waits at most refit_s (single-sample jitter does not force a fit).
  const double band = last_.baseline_rate + params_.sigma * last_.spread;
  return trough - last_fit_->trough > 0.5 * band * refit_s;
}

Evaluation GrowthDetector::add(const MemoryPoint& point, const LimitContext& limit) {
  if (!points_.empty() && point.t_s <= points_.back().p.t_s) return last_;
  const double envelope_s = params_.rate_window_s / 2;
  // The lower envelope of anonymous memory: the minimum over the preceding envelope_s.  A
  // collector's sawtooth (period up to envelope_s) is seen through its troughs, i.e. the
  // live set; a leak raises the troughs, a full heap does not.
  double trough = point.anon;
  for (size_t j = points_.size(); j-- > 0 && points_[j].p.t_s >= point.t_s - envelope_s;)
    trough = std::min(trough, points_[j].p.anon);
  points_.push_back({point, trough});
  while (!points_.empty() &&
         points_.front().p.t_s < point.t_s - params_.rate_window_s - envelope_s)
    points_.pop_front();
  while (!rates_.empty() &&
         rates_.front().t_s < point.t_s - params_.baseline_window_s - params_.sustained_for_s)
    rates_.pop_front();

  Evaluation e;
  e.t_s = point.t_s;
  {  // the level: median of the last three points (fewer at the start)
    const size_t n = points_.size();
    const double a = points_[n - 1].p.anon;
    if (n == 1) {
      e.anon = a;
    } else if (n == 2) {
      e.anon = (a + points_[0].p.anon) / 2;
    } else {
      const double b = points_[n - 2].p.anon, c = points_[n - 3].p.anon;
      e.anon = std::max(std::min(a, b), std::min(std::max(a, b), c));
    }
  }
  size_t first = 0;
  while (points_[first].p.t_s < point.t_s - params_.rate_window_s) ++first;
  const double span = points_.back().p.t_s - points_[first].p.t_s;
  const size_t count = points_.size() - first;
  if (count < params_.min_points || span < params_.rate_window_s / 2) {
    last_fit_.reset();
    last_ = e;
    return e;
  }
  if (!fit_due(point.t_s, trough)) {
    Evaluation carried = last_;  // not above, so no run: only the level moves
    carried.t_s = e.t_s;
    carried.anon = e.anon;
    last_ = carried;
    return carried;
  }

  // The rate window, relative times (they keep the arithmetic exact).
  Scratch& s = scratch();
  s.anon.clear(), s.file.clear(), s.rss.clear(), s.vsz.clear();
  for (size_t i = first; i < points_.size(); ++i) {
    const MemoryPoint& p = points_[i].p;
    const double t = p.t_s - point.t_s;
    s.anon.push_back({t, points_[i].trough});
    s.file.push_back({t, p.file});
    s.rss.push_back({t, p.rss});
    s.vsz.push_back({t, p.vsz});
  }
  auto fit = robust_fit(s.anon, s);
  if (!fit) {
    last_fit_.reset();
    last_ = e;
    return e;
  }
  last_fit_ = FitMark{point.t_s, trough};
  e.ready = true;
  e.growth_rate = fit->slope;
  e.file_rate = lag_slope(s.file, s).value_or(0);
  e.rss_rate = lag_slope(s.rss, s).value_or(0);
  e.vsz_rate = lag_slope(s.vsz, s).value_or(0);

  baseline(point.t_s, e.baseline_rate, e.spread);
  // The slope's own uncertainty widens the band: scatter (noise, a sawtooth slower than
  // the envelope) must not read as growth.
  e.spread = std::max(e.spread, fit->slope_stderr);
  const bool above = e.growth_rate > e.baseline_rate + params_.sigma * e.spread;
  const bool above_threshold = above && e.growth_rate > params_.rate_threshold;

  if (above) {
    // The growth visible in this first window is part of the run.
    if (!run_start_) run_start_ = point.t_s, run_start_level_ = s.anon.front().value;
  } else {
    run_start_.reset();
    // A quiet rate is baseline material, kept at most every baseline_window / 120: enough
    // for a robust median and spread, and a fleet node holds one history per process.
    if (rates_.empty() ||
        point.t_s - rates_.back().t_s >= 0.75 * params_.baseline_window_s / 120)
      rates_.push_back({point.t_s, e.growth_rate});
  }
  if (above_threshold) {
    if (!threshold_start_) threshold_start_ = point.t_s;
  } else {
    threshold_start_.reset();
  }
  e.above = above;
  e.above_threshold = above_threshold;
  e.above_for_s = run_start_ ? point.t_s - *run_start_ : 0;
  e.above_threshold_for_s = threshold_start_ ? point.t_s - *threshold_start_ : 0;
  e.sustained = run_start_ && e.above_for_s >= params_.sustained_for_s;
  e.increase_bytes = run_start_ ? std::max(0.0, s.anon.back().value - run_start_level_) : 0;

  const bool file_growing = e.file_rate > params_.sigma * params_.min_spread &&
                            e.file_rate > params_.rate_threshold / 4;
  if (above && file_growing) e.kind = GrowthKind::kMixed;
  else if (above) e.kind = GrowthKind::kAnon;
  else if (file_growing) e.kind = GrowthKind::kFile;

  const double rss_growth = std::max(0.0, e.rss_rate);
  e.vsz_rss_divergence =
      e.vsz_rate > params_.divergence_min_rate && e.vsz_rate > 4 * rss_growth;

  const double risk_rate =
      run_start_ && e.above_for_s >= params_.oom_min_run_s ? e.growth_rate : 0;
  e.time_to_limit_s = time_to_limit_s(limit.usage, limit.limit, risk_rate);
  e.oom_risk = oom_risk(limit.usage, limit.limit, risk_rate, params_.oom_horizon_s);
  last_ = e;
  return e;
}

const char* to_string(TriggerReason reason) {
  switch (reason) {
    case TriggerReason::kGrowthRate: return "memory_growth_rate";
    case TriggerReason::kRssIncrease: return "rss_increase_threshold";
    case TriggerReason::kOomRisk: return "oom_risk_score";
  }
  return "?";
}

std::vector<TriggerReason> check_triggers(const Evaluation& e, const TriggerConditions& c,
                                          const DetectionParams& p) {
  std::vector<TriggerReason> out;
  if (!e.ready) return out;
  if (c.memory_growth_rate && e.above_threshold && e.above_threshold_for_s >= p.sustained_for_s &&
      c.memory_growth_rate->holds(e.growth_rate))
    out.push_back(TriggerReason::kGrowthRate);
  if (c.rss_increase_threshold && e.sustained && c.rss_increase_threshold->holds(e.increase_bytes))
    out.push_back(TriggerReason::kRssIncrease);
  if (c.oom_risk_score && e.oom_risk > 0 && c.oom_risk_score->holds(e.oom_risk))
    out.push_back(TriggerReason::kOomRisk);
  return out;
}

std::vector<Evaluation> replay(std::span<const MemoryPoint> series, const DetectionParams& p,
                               const LimitContext& limit) {
  GrowthDetector d(p);
  std::vector<Evaluation> out;
  out.reserve(series.size());
  for (const MemoryPoint& m : series) out.push_back(d.add(m, limit));
  return out;
}

}  // namespace leakwatch::agent
