#include "agent/detection.h"

#include <algorithm>
#include <cmath>

namespace leakwatch::agent {
namespace {

constexpr size_t kMaxTheilSenPoints = 64;

// Reduces a long series to block medians (time and value separately): a robust summary
// that keeps Theil–Sen at O(64²).
std::vector<Point> thin(std::span<const Point> pts) {
  if (pts.size() <= kMaxTheilSenPoints) return {pts.begin(), pts.end()};
  std::vector<Point> out;
  out.reserve(kMaxTheilSenPoints);
  for (size_t b = 0; b < kMaxTheilSenPoints; ++b) {
    size_t lo = b * pts.size() / kMaxTheilSenPoints;
    size_t hi = (b + 1) * pts.size() / kMaxTheilSenPoints;
    std::vector<double> ts, vs;
    for (size_t i = lo; i < hi; ++i) ts.push_back(pts[i].t_s), vs.push_back(pts[i].value);
    out.push_back({median(ts), median(vs)});
  }
  return out;
}

struct Fit {
  double slope = 0;
  double slope_stderr = 0;  // robust standard error: spread of residuals / sqrt(Sxx)
};

// Theil–Sen slope plus how uncertain it is given the scatter around the line.  A sawtooth
// or a noisy series has large residuals and so a large error: its slope is not trusted.
std::optional<Fit> robust_fit(std::span<const Point> pts) {
  auto slope = theil_sen_slope(pts);
  if (!slope) return std::nullopt;
  Fit f;
  f.slope = *slope;
  std::vector<double> resid;
  resid.reserve(pts.size());
  double mean_t = 0;
  for (const Point& p : pts) {
    resid.push_back(p.value - f.slope * p.t_s);
    mean_t += p.t_s;
  }
  mean_t /= static_cast<double>(pts.size());
  double sxx = 0;
  for (const Point& p : pts) sxx += (p.t_s - mean_t) * (p.t_s - mean_t);
  double sigma = robust_spread(resid);
  f.slope_stderr = sxx > 0 ? sigma / std::sqrt(sxx) : 0;
  return f;
}

}  // namespace

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  double lo = *std::max_element(v.begin(), v.begin() + static_cast<long>(mid));
  return (lo + hi) / 2;
}

double robust_spread(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  double m = median(values);
  std::vector<double> dev;
  dev.reserve(values.size());
  for (double v : values) dev.push_back(std::fabs(v - m));
  return 1.4826 * median(std::move(dev));
}

std::optional<double> theil_sen_slope(std::span<const Point> points) {
  std::vector<Point> pts = thin(points);
  std::vector<double> slopes;
  slopes.reserve(pts.size() * (pts.size() - (pts.empty() ? 0 : 1)) / 2);
  for (size_t i = 0; i < pts.size(); ++i)
    for (size_t j = i + 1; j < pts.size(); ++j) {
      double dt = pts[j].t_s - pts[i].t_s;
      if (dt != 0) slopes.push_back((pts[j].value - pts[i].value) / dt);
    }
  if (slopes.empty()) return std::nullopt;
  return median(std::move(slopes));
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
// becomes the norm), over the last baseline_window.  No such history: baseline 0.
void GrowthDetector::baseline(double now, double& rate, double& spread) const {
  std::vector<double> quiet;
  for (const RateSample& r : rates_)
    if (r.t_s >= now - params_.baseline_window_s) quiet.push_back(r.rate);
  rate = 0;
  spread = 0;
  if (quiet.size() >= 5) {
    rate = std::max(0.0, median(quiet));
    spread = robust_spread(quiet);
  }
  spread = std::max(spread, params_.min_spread);
}

Evaluation GrowthDetector::add(const MemoryPoint& point, const LimitContext& limit) {
  if (!points_.empty() && point.t_s <= points_.back().t_s) return last_;
  const double envelope_s = params_.rate_window_s / 2;
  points_.push_back(point);
  while (!points_.empty() &&
         points_.front().t_s < point.t_s - params_.rate_window_s - envelope_s)
    points_.pop_front();
  while (!rates_.empty() &&
         rates_.front().t_s < point.t_s - params_.baseline_window_s - params_.sustained_for_s)
    rates_.pop_front();

  Evaluation e;
  e.t_s = point.t_s;
  {
    std::vector<double> recent;
    for (size_t i = points_.size() >= 3 ? points_.size() - 3 : 0; i < points_.size(); ++i)
      recent.push_back(points_[i].anon);
    e.anon = median(recent);
  }
  // The rate window, and for anonymous memory its lower envelope: the minimum over the
  // preceding envelope_s.  A collector's sawtooth (period up to envelope_s) is seen through
  // its troughs, i.e. the live set; a leak raises the troughs, a full heap does not.
  std::vector<Point> anon, file, rss, vsz;
  size_t first = 0;
  while (points_[first].t_s < point.t_s - params_.rate_window_s) ++first;
  for (size_t i = first; i < points_.size(); ++i) {
    const MemoryPoint& p = points_[i];
    const double t = p.t_s - point.t_s;  // relative time keeps the arithmetic exact
    double trough = p.anon;
    for (size_t j = i; j-- > 0 && points_[j].t_s >= p.t_s - envelope_s;)
      trough = std::min(trough, points_[j].anon);
    anon.push_back({t, trough});
    file.push_back({t, p.file});
    rss.push_back({t, p.rss});
    vsz.push_back({t, p.vsz});
  }
  const double span = points_.back().t_s - points_[first].t_s;
  auto fit = robust_fit(anon);
  if (anon.size() < params_.min_points || span < params_.rate_window_s / 2 || !fit) {
    last_ = e;
    return e;
  }
  e.ready = true;
  e.growth_rate = fit->slope;
  e.file_rate = robust_fit(file).value_or(Fit{}).slope;
  e.rss_rate = robust_fit(rss).value_or(Fit{}).slope;
  e.vsz_rate = robust_fit(vsz).value_or(Fit{}).slope;

  baseline(point.t_s, e.baseline_rate, e.spread);
  // The slope's own uncertainty widens the band: scatter (noise, a sawtooth slower than
  // the envelope) must not read as growth.
  e.spread = std::max(e.spread, fit->slope_stderr);
  const bool above = e.growth_rate > e.baseline_rate + params_.sigma * e.spread;
  const bool above_threshold = above && e.growth_rate > params_.rate_threshold;

  if (above) {
    // The growth visible in this first window is part of the run.
    if (!run_start_) run_start_ = point.t_s, run_start_level_ = anon.front().value;
  } else {
    run_start_.reset();
    rates_.push_back({point.t_s, e.growth_rate});  // a quiet rate: baseline material
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
  e.increase_bytes = run_start_ ? std::max(0.0, anon.back().value - run_start_level_) : 0;

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
