// Verdicts on synthetic workloads: each test builds a list of allocations (when made, when
// freed, how big), derives what the tracker would see every report interval (outstanding
// bytes and count, exactly or through the BPF-identical byte sampler) and the survivor ages
// at the end, and checks the verdict.  Seeds are fixed.
#include "analysis/verdict.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "analysis/history.h"
#include "analysis/sampling.h"

namespace leakwatch::analysis {
namespace {

using report::Verdict;

constexpr double kNever = std::numeric_limits<double>::infinity();

struct Alloc {
  double born = 0;
  double freed = kNever;
  uint64_t size = 0;
};

struct Observed {
  std::vector<SeriesPoint> points;
  SurvivorAges ages;
  double session_s = 0;
  double interval_s = 0;
};

// What the tracker sees at t = interval, 2 interval, ... session.  rate == 0: exact;
// otherwise byte sampling with mean interval `rate` (allocations sampled in birth order on
// one CPU, like the BPF countdown), estimates weighted by 1/p.
Observed observe(std::vector<Alloc> allocs, double session, double interval, uint64_t rate = 0,
                 uint64_t seed = 1) {
  std::sort(allocs.begin(), allocs.end(),
            [](const Alloc& a, const Alloc& b) { return a.born < b.born; });
  std::vector<double> weight(allocs.size(), 1.0);
  if (rate > 0) {
    std::vector<uint64_t> sizes;
    for (const Alloc& a : allocs) sizes.push_back(a.size);
    std::mt19937_64 rng(seed);
    std::vector<bool> sampled(allocs.size());
    for (size_t i : simulate_byte_sampling(sizes, rate, rng)) sampled[i] = true;
    for (size_t i = 0; i < allocs.size(); ++i)
      weight[i] = sampled[i] ? 1 / byte_inclusion_probability(static_cast<double>(sizes[i]),
                                                              static_cast<double>(rate))
                             : 0.0;
  }
  Observed o;
  o.session_s = session;
  o.interval_s = interval;
  for (double t = interval; t <= session + 1e-9; t += interval) {
    SeriesPoint p{t, 0, 0};
    for (size_t i = 0; i < allocs.size(); ++i) {
      const Alloc& a = allocs[i];
      if (a.born <= t && a.freed > t && weight[i] > 0) {
        p.bytes += weight[i] * static_cast<double>(a.size);
        p.count += weight[i];
      }
    }
    o.points.push_back(p);
  }
  std::vector<double> ages;
  for (size_t i = 0; i < allocs.size(); ++i)
    if (allocs[i].freed > session && weight[i] > 0) ages.push_back(session - allocs[i].born);
  o.ages = SurvivorAges::from_ages(ages);
  return o;
}

std::string describe(const VerdictResult& r) {
  return std::string(report::to_string(r.verdict)) + " score " + std::to_string(r.score) + ": " +
         r.reason;
}

// Classifies through a StackHistory, as the tracker does; the outcome is recorded in the
// test's XML output (--gtest_output=xml) for a reader to see the reasons.
VerdictResult classify(const Observed& o) {
  StackHistory h;
  for (const SeriesPoint& p : o.points) EXPECT_TRUE(h.add_point(p.t_s, p.bytes, p.count));
  VerdictResult r = analysis::classify(h, o.ages, o.session_s);
  ::testing::Test::RecordProperty("verdict", describe(r));
  return r;
}

// `per_s` allocations per second of `size` bytes from `from` to `to`, each living
// `lifetime(rng)` seconds.
template <typename Lifetime>
void add_stream(std::vector<Alloc>& out, double from, double to, double per_s, uint64_t size,
                Lifetime lifetime, std::mt19937_64& rng) {
  std::exponential_distribution<double> gap(per_s);
  for (double t = from + gap(rng); t < to; t += gap(rng)) out.push_back({t, t + lifetime(rng), size});
}

auto leaked = [](std::mt19937_64&) { return kNever; };

// ---- leaks ------------------------------------------------------------------------------

TEST(Verdict, SteadyLeakIsALeak) {
  std::mt19937_64 rng(1);
  std::vector<Alloc> allocs;
  add_stream(allocs, 0, 60, 10, 1024, leaked, rng);  // 10 KiB/s, never freed
  VerdictResult r = classify(observe(allocs, 60, 1));
  EXPECT_EQ(r.verdict, Verdict::kLeak) << describe(r);
  EXPECT_GT(r.score, 0.9) << describe(r);
  EXPECT_NEAR(r.growth_bytes_per_s, 10 * 1024, 0.15 * 10 * 1024);
  EXPECT_GT(r.r2, 0.98);
  // The first block is made at 0.03 s and rate and R² are as measured.
  EXPECT_EQ(r.reason, "grows 9.9 KiB/s over 59.0 s (R²=1.00), oldest survivor 60.0 s");
}

// The leak shares its stack with request buffers that live ~0.5 s and vary 1-64 KiB, so the
// series is the leak plus a noisy in-flight level of about the same size as the final leak.
TEST(Verdict, LeakUnderHeavyChurnIsALeak) {
  std::mt19937_64 rng(2);
  std::vector<Alloc> allocs;
  add_stream(allocs, 0, 60, 5, 2048, leaked, rng);  // 600 KiB after 60 s
  std::exponential_distribution<double> life(2.0);
  std::uniform_int_distribution<uint64_t> size(1024, 64 * 1024);
  std::exponential_distribution<double> gap(40.0);
  for (double t = gap(rng); t < 60; t += gap(rng)) allocs.push_back({t, t + life(rng), size(rng)});
  VerdictResult r = classify(observe(allocs, 60, 1));
  EXPECT_EQ(r.verdict, Verdict::kLeak) << describe(r);
}

// Series-level noise: a leak of 1 MiB/min with +-15% (of the final level) Gaussian noise on
// every point, as when a sampled estimate wobbles.  Theil-Sen keeps the slope within 15%.
TEST(Verdict, NoisyLeakSeriesIsALeak) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.15 * 1024 * 1024);
  std::vector<SeriesPoint> pts;
  for (int i = 1; i <= 60; ++i) {
    double bytes = 1024.0 * 1024 * i / 60 + noise(rng);
    pts.push_back({static_cast<double>(i), std::max(bytes, 0.0), i * 16.0});
  }
  SurvivorAges ages{59.5, 30, 960};
  VerdictResult r = classify_series(pts, 1, ages, 60);
  EXPECT_EQ(r.verdict, Verdict::kLeak) << describe(r);
  EXPECT_NEAR(r.growth_bytes_per_s, 1024.0 * 1024 / 60, 0.15 * 1024 * 1024 / 60);
}

// The same leak seen through byte sampling at R = 64 KiB: 3 MiB leaked in 1 KiB blocks
// (~48 sampled), so the series is a staircase of estimates and only sampled survivors
// have ages.  Checked over 20 seeds: all must be leaks.
TEST(Verdict, SampledLeakIsALeak) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(100 + seed);
    std::vector<Alloc> allocs;
    add_stream(allocs, 0, 60, 50, 1024, leaked, rng);
    VerdictResult r = classify(observe(allocs, 60, 1, 64 * 1024, seed));
    EXPECT_EQ(r.verdict, Verdict::kLeak) << "seed " << seed << ": " << describe(r);
  }
}

// A leak that starts halfway through the session: its survivors are as old as the leak,
// not the session, which is what the stack's window measures.
TEST(Verdict, LeakStartingMidSessionIsALeak) {
  std::mt19937_64 rng(4);
  std::vector<Alloc> allocs;
  add_stream(allocs, 30, 60, 20, 512, leaked, rng);
  VerdictResult r = classify(observe(allocs, 60, 1));
  EXPECT_EQ(r.verdict, Verdict::kLeak) << describe(r);
}

// Hours of a leak through a StackHistory that compacts: still a leak, same slope.
TEST(Verdict, LongLeakThroughCompactedHistory) {
  StackHistory h(64);
  for (int i = 1; i <= 3600; ++i) ASSERT_TRUE(h.add_point(i, 100.0 * i, i));
  ASSERT_LE(h.size(), 64u);
  VerdictResult r = classify(h, SurvivorAges{3599, 1800, 3600}, 3600);
  EXPECT_EQ(r.verdict, Verdict::kLeak) << describe(r);
  EXPECT_NEAR(r.growth_bytes_per_s, 100, 1e-6);
}

// Without survivor ages (e.g. a tracker that keeps only totals) growth alone is a leak, with
// less confidence.
TEST(Verdict, LeakWithoutAgesHasLowerScore) {
  std::vector<SeriesPoint> pts;
  for (int i = 1; i <= 60; ++i) pts.push_back({static_cast<double>(i), 1000.0 * i, 1.0 * i});
  VerdictResult with = classify_series(pts, 1, SurvivorAges{59.5, 30, 60}, 60);
  VerdictResult without = classify_series(pts, 1, SurvivorAges{}, 60);
  EXPECT_EQ(with.verdict, Verdict::kLeak);
  EXPECT_EQ(without.verdict, Verdict::kLeak) << describe(without);
  EXPECT_LT(without.score, with.score);
  EXPECT_NE(without.reason.find("survivor ages unknown"), std::string::npos);
}

// ---- caches -----------------------------------------------------------------------------

// A cache that fills for 20 s (4,000 entries of 1 KiB) and then stays full, replacing a few
// random entries per second.
TEST(Verdict, WarmUpThenFlatIsACache) {
  std::mt19937_64 rng(5);
  std::vector<Alloc> allocs;
  add_stream(allocs, 0, 20, 200, 1024, leaked, rng);
  // 5 replacements/s after the warm-up: a random entry is freed, a new one made.
  std::exponential_distribution<double> gap(5.0);
  for (double t = 20 + gap(rng); t < 60; t += gap(rng)) {
    std::uniform_int_distribution<size_t> pick(0, allocs.size() - 1);
    size_t victim = pick(rng);
    if (allocs[victim].freed != kNever || allocs[victim].born > t) continue;
    allocs[victim].freed = t;
    allocs.push_back({t, kNever, 1024});
  }
  for (uint64_t rate : {uint64_t{0}, uint64_t{64 * 1024}}) {
    VerdictResult r = classify(observe(allocs, 60, 1, rate, 9));
    EXPECT_EQ(r.verdict, Verdict::kCache) << "rate " << rate << ": " << describe(r);
    EXPECT_NE(r.reason.find("levels off"), std::string::npos) << r.reason;
  }
}

// A warm-up that lasts most of the session (until 42 s of 60) is still not a leak: the last
// quarter is flat.
TEST(Verdict, LongWarmUpIsNotALeak) {
  std::mt19937_64 rng(6);
  std::vector<Alloc> allocs;
  add_stream(allocs, 0, 42, 50, 1024, leaked, rng);
  VerdictResult r = classify(observe(allocs, 60, 1));
  EXPECT_NE(r.verdict, Verdict::kLeak) << describe(r);
  EXPECT_EQ(r.verdict, Verdict::kCache) << describe(r);
}

// A connection pool: 256 blocks of 16 KiB made in the first 0.1 s, kept for the session.
TEST(Verdict, PoolAllocatedAtStartIsAStableSetCache) {
  std::vector<Alloc> allocs;
  for (int i = 0; i < 256; ++i) allocs.push_back({0.05 + i * 1e-4, kNever, 16 * 1024});
  VerdictResult r = classify(observe(allocs, 60, 1));
  EXPECT_EQ(r.verdict, Verdict::kCache) << describe(r);
  EXPECT_NE(r.reason.find("stable set"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("256 allocations"), std::string::npos) << r.reason;
  EXPECT_NEAR(r.growth_bytes_per_s, 0, 1e-9);
}

// An LRU of 500 entries with 100 insertions/s: each insertion evicts the least recently
// used (here the oldest), so entries live ~5 s and the level is flat after 5 s.  Survivors
// are younger than a tenth of the session but older than the report interval.
TEST(Verdict, ChurningLruIsACache) {
  std::mt19937_64 rng(7);
  std::vector<Alloc> allocs;
  std::exponential_distribution<double> gap(100.0);
  for (double t = gap(rng); t < 60; t += gap(rng)) {
    allocs.push_back({t, kNever, 2048});
    if (allocs.size() > 500) allocs[allocs.size() - 501].freed = t;
  }
  for (uint64_t rate : {uint64_t{0}, uint64_t{64 * 1024}}) {
    Observed o = observe(allocs, 60, 1, rate, 3);
    VerdictResult r = classify(o);
    EXPECT_EQ(r.verdict, Verdict::kCache) << "rate " << rate << ": " << describe(r);
    EXPECT_NE(r.reason.find("with churn"), std::string::npos) << r.reason;
    EXPECT_LT(o.ages.oldest_s, 10);
  }
}

// A buffer that grows for 10 s and is then released, over and over; the session ends
// halfway through a cycle.  Bounded, not a leak.
TEST(Verdict, SawtoothIsBoundedNotALeak) {
  std::mt19937_64 rng(8);
  std::vector<Alloc> allocs;
  for (int cycle = 0; cycle < 7; ++cycle) {
    double start = cycle * 10.0, end = start + 10;
    std::exponential_distribution<double> gap(100.0);
    for (double t = start + gap(rng); t < end; t += gap(rng)) allocs.push_back({t, end, 4096});
  }
  VerdictResult r = classify(observe(allocs, 65, 1));
  EXPECT_NE(r.verdict, Verdict::kLeak) << describe(r);
  EXPECT_EQ(r.verdict, Verdict::kCache) << describe(r);
  EXPECT_LT(r.r2, 0.1);
}

// The same sawtooth with a leak riding on it (5 KiB/s kept): a leak.
TEST(Verdict, SawtoothOnTopOfALeakIsALeak) {
  std::mt19937_64 rng(9);
  std::vector<Alloc> allocs;
  for (int cycle = 0; cycle < 6; ++cycle) {
    double start = cycle * 10.0, end = start + 10;
    std::exponential_distribution<double> gap(20.0);
    for (double t = start + gap(rng); t < end; t += gap(rng)) allocs.push_back({t, end, 4096});
  }
  add_stream(allocs, 0, 60, 20, 4096, leaked, rng);  // 80 KiB/s kept
  VerdictResult r = classify(observe(allocs, 60.5, 1));
  EXPECT_EQ(r.verdict, Verdict::kLeak) << describe(r);
}

// ---- accuracy over seeds ----------------------------------------------------------------

// Each workload under 20 seeds, exact and byte-sampled, counting verdicts.  The minimum
// rates are what a user can rely on; the measured rates over 100 seeds (see verdict.h) are
// higher.  A sampled stack needs a few tens of sampled survivors for a firm verdict.
struct Workload {
  const char* name;
  std::vector<Alloc> (*make)(std::mt19937_64&);
};

std::vector<Alloc> leak_200_per_s(std::mt19937_64& rng) {
  std::vector<Alloc> a;
  add_stream(a, 0, 60, 200, 1024, leaked, rng);  // 12 MiB/min: ~22 samples at R = 512 KiB
  return a;
}
std::vector<Alloc> warm_up_20_s(std::mt19937_64& rng) {
  std::vector<Alloc> a;
  add_stream(a, 0, 20, 200, 1024, leaked, rng);
  return a;
}
std::vector<Alloc> pool_at_start(std::mt19937_64&) {
  std::vector<Alloc> a;
  for (int i = 0; i < 256; ++i) a.push_back({0.05 + i * 1e-4, kNever, 16 * 1024});
  return a;
}
std::vector<Alloc> lru_5_s(std::mt19937_64& rng) {
  std::vector<Alloc> a;
  std::exponential_distribution<double> gap(100.0);
  for (double t = gap(rng); t < 60; t += gap(rng)) {
    a.push_back({t, kNever, 2048});
    if (a.size() > 500) a[a.size() - 501].freed = t;
  }
  return a;
}

std::map<Verdict, int> verdicts(const Workload& w, uint64_t rate) {
  std::map<Verdict, int> n;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(500 + seed);
    std::vector<Alloc> allocs = w.make(rng);
    n[classify(observe(allocs, 60, 1, rate, 900 + seed)).verdict]++;
  }
  return n;
}

TEST(Verdict, LeaksAreFoundAcrossSeeds) {
  Workload leak{"leak", leak_200_per_s};
  EXPECT_EQ(verdicts(leak, 0)[Verdict::kLeak], 20);
  EXPECT_GE(verdicts(leak, 64 * 1024)[Verdict::kLeak], 19);   // ~180 samples: measured 100%
  EXPECT_GE(verdicts(leak, 512 * 1024)[Verdict::kLeak], 17);  // ~22 samples: measured 98%
}

TEST(Verdict, CachesAreNotLeaksAcrossSeeds) {
  for (Workload w : {Workload{"warm-up", warm_up_20_s}, Workload{"pool", pool_at_start},
                     Workload{"lru", lru_5_s}}) {
    for (uint64_t rate : {uint64_t{0}, uint64_t{64 * 1024}, uint64_t{512 * 1024}}) {
      std::map<Verdict, int> n = verdicts(w, rate);
      // Never called a leak exactly; at most one seed in 20 with few samples (measured: 1
      // warm-up in 100 at R = 512 KiB, ~8 samples).
      EXPECT_LE(n[Verdict::kLeak], rate == 0 ? 0 : 1) << w.name << " R=" << rate;
      // With enough samples the verdict is cache; at R = 512 KiB the LRU keeps ~2 sampled
      // survivors and may be transient or unknown, which is honest.
      if (rate < 512 * 1024 || std::string(w.name) != "lru") {
        EXPECT_GE(n[Verdict::kCache], 17) << w.name << " R=" << rate;
      }
    }
  }
}

// ---- transient and unknown --------------------------------------------------------------

// Request buffers living ~50 ms at 1,000/s: always ~50 in flight, none older than a second.
TEST(Verdict, ShortLivedAllocationsAreTransient) {
  std::mt19937_64 rng(10);
  std::vector<Alloc> allocs;
  std::exponential_distribution<double> life(20.0);
  add_stream(allocs, 0, 60, 1000, 512, [&](std::mt19937_64& g) { return life(g); }, rng);
  Observed o = observe(allocs, 60, 1);
  VerdictResult r = classify(o);
  EXPECT_EQ(r.verdict, Verdict::kTransient) << describe(r);
  EXPECT_NE(r.reason.find("survivors young"), std::string::npos) << r.reason;
}

TEST(Verdict, EverythingFreedIsTransient) {
  std::vector<SeriesPoint> pts = {{1, 100, 1}, {2, 300, 3}, {3, 0, 0}, {4, 0, 0}};
  VerdictResult r = classify_series(pts, 1, SurvivorAges{}, 4);
  EXPECT_EQ(r.verdict, Verdict::kTransient) << describe(r);
}

TEST(Verdict, TooFewPointsIsUnknownButStillMeasured) {
  std::vector<SeriesPoint> pts = {{1, 1000, 1}, {2, 3000, 3}};
  VerdictResult r = classify_series(pts, 1, SurvivorAges{1.9, 1, 3}, 2);
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_EQ(r.score, 0);
  EXPECT_DOUBLE_EQ(r.growth_bytes_per_s, 2000);
  EXPECT_NE(r.reason.find("only 2 points"), std::string::npos) << r.reason;

  StackHistory empty;
  EXPECT_EQ(classify(empty, SurvivorAges{}, 0).verdict, Verdict::kUnknown);
}

TEST(Verdict, GrowthFromTwoSamplesIsUnknown) {
  std::vector<SeriesPoint> pts;
  for (int i = 1; i <= 60; ++i)
    pts.push_back({static_cast<double>(i), i < 20 ? 0.0 : i < 45 ? 5e5 : 1e6, 0});
  VerdictResult r = classify_series(pts, 1, SurvivorAges{41, 28, 2, 15}, 60);
  EXPECT_EQ(r.verdict, Verdict::kUnknown) << describe(r);
  EXPECT_NE(r.reason.find("only 2 sampled survivors"), std::string::npos) << r.reason;
}

// Growth whose survivors are a few seconds old (a queue backing up under rising load, say)
// is neither a leak nor a cache nor transient: unknown, with the reason why.
TEST(Verdict, GrowthWithMiddleAgedSurvivorsIsUnknown) {
  std::vector<SeriesPoint> pts;
  for (int i = 1; i <= 60; ++i) pts.push_back({static_cast<double>(i), 1000.0 * i, 1.0 * i});
  VerdictResult r = classify_series(pts, 1, SurvivorAges{8, 4, 60}, 60);
  EXPECT_EQ(r.verdict, Verdict::kUnknown) << describe(r);
  EXPECT_NE(r.reason.find("not old enough"), std::string::npos) << r.reason;
  EXPECT_NEAR(r.growth_bytes_per_s, 1000, 1e-9);
}

TEST(Verdict, FormatBytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(12.3 * 1024), "12.3 KiB");
  EXPECT_EQ(format_bytes(4.0 * 1024 * 1024), "4.0 MiB");
}

}  // namespace
}  // namespace leakwatch::analysis
