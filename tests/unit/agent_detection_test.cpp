// Detection and risk math on synthetic series shaped like real ones (seeded noise):
// warm-up then flat, linear leaks fast and slow, a GC sawtooth with and without a leak,
// page-cache growth, address-space growth, outliers, and the OOM-risk figure.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <sstream>

#include "agent/detection.h"
#include "common/atomic_file.h"

namespace leakwatch::agent {
namespace {

constexpr double kMB = 1e6;
constexpr double kMiB = 1024.0 * 1024.0;

// The issue's trigger block: >5MB/min, >100MB, >0.7.
TriggerConditions issue_conditions() {
  TriggerConditions c;
  c.memory_growth_rate = Threshold{Comparison::kGreater, 5 * kMB / 60};
  c.rss_increase_threshold = Threshold{Comparison::kGreater, 100 * kMB};
  c.oom_risk_score = Threshold{Comparison::kGreater, 0.7};
  return c;
}

DetectionParams default_params() {
  return DetectionParams::from(DetectionConfig{}, issue_conditions());
}

// A series sampled every `interval` seconds for `duration` seconds: anon = shape(t) plus
// Gaussian noise of `noise` bytes (allocator jitter); file and vsz follow given shapes.
struct SeriesSpec {
  double duration_s = 3600;
  double interval_s = 10;
  double noise = 200e3;
  std::function<double(double)> anon;
  std::function<double(double)> file = [](double) { return 50 * kMB; };
  std::function<double(double)> vsz_extra = [](double) { return 0.0; };
  unsigned seed = 1;
};

std::vector<MemoryPoint> make_series(const SeriesSpec& s) {
  std::mt19937 rng(s.seed);
  std::normal_distribution<double> noise(0, s.noise);
  std::vector<MemoryPoint> out;
  for (double t = 0; t <= s.duration_s; t += s.interval_s) {
    MemoryPoint p;
    p.t_s = 1000 + t;  // a monotonic clock does not start at 0
    p.anon = s.anon(t) + noise(rng);
    p.file = s.file(t);
    p.rss = p.anon + p.file;
    p.vsz = 2 * p.rss + 500 * kMB + s.vsz_extra(t);
    out.push_back(p);
  }
  return out;
}

struct Outcome {
  std::optional<double> first_trigger_s[3];  // per TriggerReason, time since series start
  bool ever_sustained = false;
  std::vector<Evaluation> evals;
};

Outcome run(const std::vector<MemoryPoint>& series, const LimitContext& limit = {},
            const TriggerConditions& cond = issue_conditions()) {
  DetectionParams p = DetectionParams::from(DetectionConfig{}, cond);
  Outcome o;
  o.evals = replay(series, p, limit);
  for (const Evaluation& e : o.evals) {
    o.ever_sustained |= e.sustained;
    for (TriggerReason r : check_triggers(e, cond, p)) {
      auto& first = o.first_trigger_s[static_cast<int>(r)];
      if (!first) first = e.t_s - 1000;
    }
  }
  return o;
}

bool any_trigger(const Outcome& o) {
  return o.first_trigger_s[0] || o.first_trigger_s[1] || o.first_trigger_s[2];
}

TEST(AgentDetection, TheilSenIgnoresOutliers) {
  std::vector<Point> pts;
  for (int i = 0; i < 40; ++i) pts.push_back({i * 10.0, 1000.0 + 7.0 * i * 10.0});
  for (int i : {3, 11, 17, 25, 31, 38}) pts[static_cast<size_t>(i)].value += 1e9;  // 15% wild
  auto slope = theil_sen_slope(pts);
  ASSERT_TRUE(slope);
  EXPECT_NEAR(*slope, 7.0, 0.01);
  EXPECT_FALSE(theil_sen_slope(std::vector<Point>{{1, 1}, {1, 2}}));  // no time difference
}

TEST(AgentDetection, TheilSenOnLongSeriesThinsButStaysExact) {
  std::vector<Point> pts;
  for (int i = 0; i < 5000; ++i) pts.push_back({i * 1.0, -3.0 * i});
  EXPECT_NEAR(theil_sen_slope(pts).value(), -3.0, 1e-9);
}

TEST(AgentDetection, MedianAndSpread) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median({}), 0);
  // MAD of a standard normal sample scaled by 1.4826 estimates sigma = 1 (n = 20000: ±3%).
  std::mt19937 rng(7);
  std::normal_distribution<double> n(0, 1);
  std::vector<double> v;
  for (int i = 0; i < 20000; ++i) v.push_back(n(rng));
  EXPECT_NEAR(robust_spread(v), 1.0, 0.03);
}

TEST(AgentDetection, OomRiskFromTimeToLimit) {
  const double horizon = 3600;
  EXPECT_DOUBLE_EQ(oom_risk(100, 1000, 0, horizon), 0);     // not growing
  EXPECT_DOUBLE_EQ(oom_risk(100, 1000, -5, horizon), 0);    // shrinking
  EXPECT_DOUBLE_EQ(oom_risk(1000, 1000, 1, horizon), 1);    // at the limit and growing
  EXPECT_DOUBLE_EQ(oom_risk(100, 0, 1, horizon), 0);        // no known limit
  // 900 bytes of headroom at 1 byte/s: 900 s = horizon / 4.
  EXPECT_NEAR(oom_risk(100, 1000, 1, horizon), std::exp(-0.25), 1e-12);
  EXPECT_DOUBLE_EQ(time_to_limit_s(100, 1000, 1).value(), 900);
  EXPECT_FALSE(time_to_limit_s(100, 1000, 0));
  // The risk rises monotonically as the limit approaches.
  double prev = 0;
  for (double usage = 0; usage < 1000; usage += 50) {
    double r = oom_risk(usage, 1000, 0.1, horizon);
    EXPECT_GE(r, prev);
    EXPECT_LE(r, 1.0);
    prev = r;
  }
}

TEST(AgentDetection, WarmUpThatLevelsOffDoesNotTrigger) {
  // 300 MB over the first 2 minutes (a cache filling at start-up, ~150 MB/min), then flat
  // for an hour; several noise seeds.
  for (unsigned seed = 1; seed <= 5; ++seed) {
    SeriesSpec s;
    s.seed = seed;
    s.anon = [](double t) { return 100 * kMB + 300 * kMB * std::min(t, 120.0) / 120.0; };
    Outcome o = run(make_series(s));
    EXPECT_FALSE(any_trigger(o)) << "seed " << seed;
    EXPECT_FALSE(o.ever_sustained) << "seed " << seed;
    // The rate was seen during warm-up and fell back after it.
    EXPECT_GT(o.evals[12].growth_rate, 50 * kMB / 60);
    EXPECT_LT(std::fabs(o.evals.back().growth_rate), 0.5 * kMB / 60);
  }
}

TEST(AgentDetection, LongerWarmUpThatLevelsOffDoesNotTrigger) {
  // 3 minutes of warm-up: still shorter than sustained_for plus half the rate window.
  SeriesSpec s;
  s.anon = [](double t) { return 100 * kMB + 400 * kMB * std::min(t, 180.0) / 180.0; };
  EXPECT_FALSE(any_trigger(run(make_series(s))));
}

// Sampled every 10 s (the default) and every second (fleet nodes; there the fits run once
// per rate_window / 12 while the series is quiet, every sample once growth is above the
// band): the same triggers within the same bounds.
TEST(AgentDetection, LinearLeakTriggersAfterSustainedFor) {
  // Flat, then leaking 10 MB/min.
  const double rate = 10 * kMB / 60;
  struct Sampling {
    double interval_s, leak_start, duration_s;
  };
  for (const Sampling& sampling : {Sampling{10, 600, 2400}, Sampling{1, 3600, 5400}})
    for (unsigned seed = 1; seed <= 3; ++seed) {
      SCOPED_TRACE(testing::Message() << "interval " << sampling.interval_s << " s, seed " << seed);
      const double leak_start = sampling.leak_start;
      SeriesSpec s;
      s.seed = seed;
      s.interval_s = sampling.interval_s;
      s.duration_s = sampling.duration_s;
      s.anon = [&](double t) { return 200 * kMB + rate * std::max(0.0, t - leak_start); };
      Outcome o = run(make_series(s));
      auto growth = o.first_trigger_s[static_cast<int>(TriggerReason::kGrowthRate)];
      ASSERT_TRUE(growth.has_value());
      // Not before sustained_for (300 s) has passed; detected within a rate window after that.
      EXPECT_GE(*growth, leak_start + 300);
      EXPECT_LE(*growth, leak_start + 300 + 120);
      // The increase condition fires once 100 MB have accumulated (10 minutes at 10 MB/min).
      auto increase = o.first_trigger_s[static_cast<int>(TriggerReason::kRssIncrease)];
      ASSERT_TRUE(increase.has_value());
      EXPECT_NEAR(*increase, leak_start + 600, 90);
      // No limit known: no OOM risk.
      EXPECT_FALSE(o.first_trigger_s[static_cast<int>(TriggerReason::kOomRisk)]);
      // The robust rate is the leak rate within 5%.
      EXPECT_NEAR(o.evals.back().growth_rate, rate, 0.05 * rate);
      EXPECT_EQ(o.evals.back().kind, GrowthKind::kAnon);
      EXPECT_FALSE(o.evals.back().vsz_rss_divergence);
      if (sampling.interval_s != 1) continue;
      // Every second, before the leak: the rate moves about once per 10 s (the fits), more
      // often only while noise lifts it above the band for a moment.
      size_t changes = 0, quiet = 0;
      for (size_t i = 1; i < o.evals.size() && o.evals[i].t_s - 1000 < leak_start; ++i) {
        if (!o.evals[i].ready) continue;
        ++quiet;
        changes += o.evals[i].growth_rate != o.evals[i - 1].growth_rate;
      }
      EXPECT_GT(quiet, 3000u);
      EXPECT_LT(changes, quiet / 6);
    }
}

TEST(AgentDetection, SlowLeakTriggersOnIncreaseNotOnRate) {
  // 1 MB/min: below the 5 MB/min rate condition, but 100 MB accumulate in 100 minutes.
  SeriesSpec s;
  s.duration_s = 3 * 3600;
  s.noise = 50e3;
  s.anon = [](double t) { return 200 * kMB + kMB / 60 * t; };
  Outcome o = run(make_series(s));
  EXPECT_FALSE(o.first_trigger_s[static_cast<int>(TriggerReason::kGrowthRate)]);
  auto increase = o.first_trigger_s[static_cast<int>(TriggerReason::kRssIncrease)];
  ASSERT_TRUE(increase.has_value());
  EXPECT_NEAR(*increase, 100 * 60, 15 * 60);
}

TEST(AgentDetection, GcSawtoothDoesNotTrigger) {
  // A collector: 60 MB allocated over each 50-second cycle, then freed.
  for (unsigned seed = 1; seed <= 3; ++seed) {
    SeriesSpec s;
    s.seed = seed;
    s.anon = [](double t) { return 300 * kMB + 60 * kMB * std::fmod(t, 50.0) / 50.0; };
    Outcome o = run(make_series(s));
    EXPECT_FALSE(any_trigger(o)) << "seed " << seed;
    EXPECT_FALSE(o.ever_sustained) << "seed " << seed;
  }
}

TEST(AgentDetection, GcSawtoothOverALeakTriggers) {
  // The same collector whose troughs rise 8 MB/min: a leak under the sawtooth.
  for (unsigned seed = 1; seed <= 3; ++seed) {
    SeriesSpec s;
    s.seed = seed;
    s.duration_s = 2400;
    s.anon = [](double t) {
      return 300 * kMB + 8 * kMB / 60 * t + 60 * kMB * std::fmod(t, 50.0) / 50.0;
    };
    Outcome o = run(make_series(s));
    auto growth = o.first_trigger_s[static_cast<int>(TriggerReason::kGrowthRate)];
    ASSERT_TRUE(growth.has_value()) << "seed " << seed;
    EXPECT_LE(*growth, 300 + 240) << "seed " << seed;
    // Measured on the troughs: the leak rate, not the collector's allocation rate.
    EXPECT_NEAR(o.evals.back().growth_rate, 8 * kMB / 60, 0.1 * 8 * kMB / 60);
  }
}

TEST(AgentDetection, PageCacheGrowthIsNotALeak) {
  SeriesSpec s;
  s.anon = [](double) { return 200 * kMB; };
  s.file = [](double t) { return 50 * kMB + 20 * kMB / 60 * t; };  // 20 MB/min of cache
  Outcome o = run(make_series(s));
  EXPECT_FALSE(any_trigger(o));
  EXPECT_EQ(o.evals.back().kind, GrowthKind::kFile);
  EXPECT_NEAR(o.evals.back().file_rate, 20 * kMB / 60, 0.01 * 20 * kMB / 60);
}

TEST(AgentDetection, AddressSpaceGrowingWithoutRssIsDivergence) {
  // 64 MiB of address space per minute (e.g. thread stacks never joined), RSS flat.
  SeriesSpec s;
  s.duration_s = 900;
  s.anon = [](double) { return 200 * kMB; };
  s.vsz_extra = [](double t) { return 64 * kMiB / 60 * t; };
  Outcome o = run(make_series(s));
  EXPECT_TRUE(o.evals.back().vsz_rss_divergence);
  EXPECT_FALSE(any_trigger(o));
}

TEST(AgentDetection, OutlierSamplesDoNotMakeGrowth) {
  // Flat, with a spike of +500 MB in one sample out of 15 (a transient buffer).
  SeriesSpec s;
  s.anon = [](double t) {
    return 200 * kMB + (std::fmod(t, 150.0) == 0 ? 500 * kMB : 0.0);
  };
  Outcome o = run(make_series(s));
  EXPECT_FALSE(any_trigger(o));
  EXPECT_FALSE(o.ever_sustained);
}

TEST(AgentDetection, OomRiskTriggersNearACgroupLimit) {
  // 20 MB/min towards a 1 GB limit from 600 MB: about 20 minutes left at the start,
  // risk exp(-20/60) = 0.72 > 0.7 once growth has lasted a minute.
  const double rate = 20 * kMB / 60;
  SeriesSpec s;
  s.duration_s = 900;
  s.anon = [&](double t) { return 600 * kMB + rate * t; };
  auto series = make_series(s);
  DetectionParams p = default_params();
  GrowthDetector d(p);
  std::optional<double> first_oom;
  double last_risk = 0;
  for (const MemoryPoint& m : series) {
    LimitContext lim{m.anon, 1000 * kMB, true};
    Evaluation e = d.add(m, lim);
    for (TriggerReason r : check_triggers(e, issue_conditions(), p))
      if (r == TriggerReason::kOomRisk && !first_oom) first_oom = e.t_s - 1000;
    if (e.time_to_limit_s) {
      EXPECT_NEAR(*e.time_to_limit_s, (1000 * kMB - m.anon) / rate,
                  0.1 * (1000 * kMB - m.anon) / rate + 30);
    }
    EXPECT_GE(e.oom_risk, last_risk - 0.02);  // rises as the limit nears (noise aside)
    last_risk = e.oom_risk;
  }
  ASSERT_TRUE(first_oom.has_value());
  // Rate window half full (60 s) + a minute of growth, then the first evaluation.
  EXPECT_LE(*first_oom, 240);
  EXPECT_GT(last_risk, 0.8);
}

TEST(AgentDetection, NewDetectorAfterRestartStartsClean) {
  // A process leaks for 20 minutes, restarts (its anon drops to 50 MB), then stays flat.
  // The agent keys detectors by process instance, so the restarted one has no history:
  // its first evaluations are not ready and nothing carries over.
  SeriesSpec leak;
  leak.duration_s = 1200;
  leak.anon = [](double t) { return 200 * kMB + 10 * kMB / 60 * t; };
  Outcome before = run(make_series(leak));
  EXPECT_TRUE(any_trigger(before));

  SeriesSpec flat;
  flat.anon = [](double) { return 50 * kMB; };
  Outcome after = run(make_series(flat));
  EXPECT_FALSE(after.evals.front().ready);
  EXPECT_FALSE(any_trigger(after));
}

TEST(AgentDetection, ConditionsAreIndependent) {
  // Without a memory_growth_rate condition, a fast leak still triggers by increase only.
  TriggerConditions only_increase;
  only_increase.rss_increase_threshold = Threshold{Comparison::kGreater, 50 * kMB};
  SeriesSpec s;
  s.duration_s = 1200;
  s.anon = [](double t) { return 200 * kMB + 10 * kMB / 60 * t; };
  Outcome o = run(make_series(s), {}, only_increase);
  EXPECT_FALSE(o.first_trigger_s[static_cast<int>(TriggerReason::kGrowthRate)]);
  EXPECT_TRUE(o.first_trigger_s[static_cast<int>(TriggerReason::kRssIncrease)]);
}

// Series recorded from real processes (tests/fixtures/agent_grower sampled by the layer-1
// collector every ~100 ms on a loaded machine; tests/data/proc/series_*.csv), replayed with
// time compressed: 2 s rate window, 8 s sustained.  The recorded warm-up lasted 5.7 s.
std::vector<MemoryPoint> recorded(const std::string& name) {
  auto text = read_file(std::string(LEAKWATCH_TEST_DATA) + "/proc/" + name);
  EXPECT_TRUE(text) << name;
  std::vector<MemoryPoint> out;
  std::istringstream in(text.value_or(""));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    MemoryPoint p;
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf,%lf", &p.t_s, &p.anon, &p.file, &p.rss,
                    &p.vsz) == 5)
      out.push_back(p);
  }
  return out;
}

struct Compressed {
  DetectionParams params;
  TriggerConditions cond;
  Compressed() {
    cond.memory_growth_rate = Threshold{Comparison::kGreater, 1e6};   // 1 MB/s
    cond.rss_increase_threshold = Threshold{Comparison::kGreater, 8e6};
    DetectionConfig d;
    d.rate_window_s = 2;
    d.sustained_for_s = 8;
    d.baseline_window_s = 30;
    params = DetectionParams::from(d, cond);
  }
};

TEST(AgentDetection, RecordedWarmUpDoesNotTrigger) {
  auto series = recorded("series_warmup_64m_3s.csv");
  ASSERT_GT(series.size(), 50u);
  Compressed c;
  bool any = false, sustained = false;
  double max_rate = 0;
  for (const Evaluation& e : replay(series, c.params)) {
    any |= !check_triggers(e, c.cond, c.params).empty();
    sustained |= e.sustained;
    max_rate = std::max(max_rate, e.growth_rate);
  }
  EXPECT_FALSE(any);
  EXPECT_FALSE(sustained);
  EXPECT_GT(max_rate, 8 * kMiB);  // the warm-up itself was measured (~11 MiB/s)
}

TEST(AgentDetection, RecordedLeakTriggers) {
  auto series = recorded("series_leak_2m_per_s.csv");
  ASSERT_GT(series.size(), 50u);
  Compressed c;
  std::optional<double> growth, increase;
  auto evals = replay(series, c.params);
  for (const Evaluation& e : evals)
    for (TriggerReason r : check_triggers(e, c.cond, c.params)) {
      if (r == TriggerReason::kGrowthRate && !growth) growth = e.t_s;
      if (r == TriggerReason::kRssIncrease && !increase) increase = e.t_s;
    }
  ASSERT_TRUE(growth.has_value());
  EXPECT_GE(*growth, 8.0);  // not before sustained_for
  EXPECT_LE(*growth, 11.0);
  ASSERT_TRUE(increase.has_value());
  EXPECT_NEAR(evals.back().growth_rate, 2 * kMiB, 0.3 * 2 * kMiB);
}

}  // namespace
}  // namespace leakwatch::agent
