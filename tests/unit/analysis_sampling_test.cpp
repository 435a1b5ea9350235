// Sampling math: the exponential table, the BPF-identical byte sampler, and the coverage of
// the Horvitz-Thompson intervals.  Every random test has a fixed seed, so results are
// reproducible; tolerances are stated next to each assertion.
#include "analysis/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace leakwatch::analysis {
namespace {

constexpr double kFixedOne = 1 << LW_EXP_TABLE_SHIFT;

// Log-uniform sizes in [lo, hi]: every octave equally likely, like real allocation mixes
// (many small blocks, a few large ones that dominate the bytes).
std::vector<uint64_t> log_uniform_sizes(size_t n, double lo, double hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
  std::vector<uint64_t> sizes(n);
  for (auto& s : sizes) s = static_cast<uint64_t>(std::llround(std::exp(u(rng))));
  return sizes;
}

// The outcome of tracing one synthetic workload: truth and estimate of outstanding memory.
struct Trial {
  double true_bytes = 0;
  double true_count = 0;
  report::Estimate bytes;
  report::Estimate count;
};

// Each allocation stays outstanding with probability keep (freeing is independent of
// sampling, as in a real program).  Sampling is byte sampling through the BPF-identical
// simulator, with `cpus` per-CPU countdowns.
Trial byte_trial(const std::vector<uint64_t>& sizes, uint64_t rate, double keep, unsigned cpus,
                 std::mt19937_64& rng) {
  std::vector<size_t> sampled = simulate_byte_sampling(sizes, rate, rng, cpus);
  std::vector<bool> is_sampled(sizes.size());
  for (size_t i : sampled) is_sampled[i] = true;
  std::bernoulli_distribution outstanding(keep);
  Trial t;
  EstimateAccumulator acc;
  report::Sampling mode{report::SamplingMode::kBytes, rate};
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (!outstanding(rng)) continue;
    t.true_bytes += static_cast<double>(sizes[i]);
    t.true_count += 1;
    if (is_sampled[i]) acc.add(static_cast<double>(sizes[i]), inclusion_probability(mode, sizes[i]));
  }
  t.bytes = acc.bytes();
  t.count = acc.count();
  return t;
}

// -s N: each call kept with probability 1/N (BPF: bpf_get_prandom_u32() % N == 0).
Trial calls_trial(const std::vector<uint64_t>& sizes, uint64_t n, double keep,
                  std::mt19937_64& rng) {
  std::bernoulli_distribution outstanding(keep);
  Trial t;
  EstimateAccumulator acc;
  report::Sampling mode{report::SamplingMode::kCalls, n};
  for (uint64_t size : sizes) {
    bool sampled = static_cast<uint32_t>(rng()) % n == 0;
    if (!outstanding(rng)) continue;
    t.true_bytes += static_cast<double>(size);
    t.true_count += 1;
    if (sampled) acc.add(static_cast<double>(size), inclusion_probability(mode, size));
  }
  t.bytes = acc.bytes();
  t.count = acc.count();
  return t;
}

bool covers(const report::Estimate& e, double truth) {
  return e.ci_lo <= truth && truth <= e.ci_hi;
}

TEST(ExponentialTable, MatchesTheFormulaAndIsAscending) {
  std::vector<uint32_t> table = exponential_table(LW_EXP_TABLE_SIZE);
  ASSERT_EQ(table.size(), 1024u);
  EXPECT_EQ(table.front(), 32u);  // round(65536 * -ln(1 - 0.5/1024)) = round(32.02)
  EXPECT_EQ(table.back(), static_cast<uint32_t>(std::lround(kFixedOne * std::log(2048.0))));
  EXPECT_TRUE(std::is_sorted(table.begin(), table.end()));
  for (size_t i : {0u, 100u, 511u, 1000u}) {
    double u = (static_cast<double>(i) + 0.5) / 1024;
    EXPECT_NEAR(table[i], kFixedOne * -std::log(1 - u), 0.5) << i;
  }
}

TEST(ExponentialTable, MomentsAndQuantilesAreThoseOfExpOne) {
  std::vector<uint32_t> table = exponential_table(LW_EXP_TABLE_SIZE);
  double n = static_cast<double>(table.size());
  double mean = 0, second = 0;
  for (uint32_t v : table) {
    mean += v / kFixedOne / n;
    second += (v / kFixedOne) * (v / kFixedOne) / n;
  }
  // Mid-quantiles under-represent the tail's last cell (ln 2n instead of 1 + ln n), which
  // costs (1 - ln 2)/n ~ 3e-4 of the mean: tolerance 5e-4.
  EXPECT_NEAR(mean, 1.0, 5e-4);
  EXPECT_LT(mean, 1.0);
  // Var(Exp(1)) = 1; the truncated tail (nothing above ln 2048 = 7.6) loses ~1%: 2.5%.
  EXPECT_NEAR(second - mean * mean, 1.0, 0.025);
  // Quantiles: P(X > 1) = 1/e; median ln 2; 90% ln 10.  One table step of tolerance.
  double above_one = std::count_if(table.begin(), table.end(),
                                   [](uint32_t v) { return v > kFixedOne; }) / n;
  EXPECT_NEAR(above_one, std::exp(-1.0), 1.0 / n);
  EXPECT_NEAR((table[511] + table[512]) / 2 / kFixedOne, std::log(2.0), 2e-3);
  EXPECT_NEAR(table[921] / kFixedOne, std::log(10.0), 1e-2);  // (921.5)/1024 = 0.9
}

TEST(InclusionProbability, ByMode) {
  double r = 64 * 1024;
  EXPECT_DOUBLE_EQ(byte_inclusion_probability(r, r), 1 - std::exp(-1.0));
  EXPECT_EQ(byte_inclusion_probability(0, r), 0.0);
  // s << R: p ~ s/R (1 - s/2R), kept to full precision by expm1.
  double tiny = byte_inclusion_probability(1, 1 << 30);
  EXPECT_NEAR(tiny * (1 << 30), 1 - 0.5 / (1 << 30), 1e-12);
  EXPECT_EQ(byte_inclusion_probability(100, 1), 1.0);

  report::Sampling exact{};
  report::Sampling calls{report::SamplingMode::kCalls, 100};
  report::Sampling bytes{report::SamplingMode::kBytes, 512 * 1024};
  EXPECT_EQ(inclusion_probability(exact, 10), 1.0);
  EXPECT_EQ(sample_weight(calls, 10), 100.0);
  EXPECT_NEAR(sample_weight(bytes, 512 * 1024), 1 / (1 - std::exp(-1.0)), 1e-12);
  EXPECT_EQ(sample_weight(bytes, 0), 0.0);
}

// The memoryless claim in bpf/sampling_table.h, tested on the BPF algorithm itself: with
// sizes from R/64 to 3R interleaved at random on 4 CPUs, each size is sampled with
// p(s) = 1 - exp(-s/R).  Tolerance per size: 4 binomial standard deviations plus the
// table's known 0.034% excess (its mean is 0.99966).
TEST(ByteSampler, EachSizeIsSampledWithOneMinusExpMinusSOverR) {
  const uint64_t rate = 64 * 1024;
  const std::vector<uint64_t> classes = {rate / 64, rate / 8, rate / 2, rate, 3 * rate};
  std::mt19937_64 rng(20240601);
  ByteSampler sampler(rate, 4);
  std::vector<double> trials(classes.size()), hits(classes.size());
  for (int i = 0; i < 1'000'000; ++i) {
    size_t c = rng() % classes.size();
    trials[c] += 1;
    if (sampler.sample(classes[c], static_cast<unsigned>(rng() % 4),
                       static_cast<uint32_t>(rng())))
      hits[c] += 1;
  }
  for (size_t c = 0; c < classes.size(); ++c) {
    double p = byte_inclusion_probability(static_cast<double>(classes[c]),
                                          static_cast<double>(rate));
    double sd = std::sqrt(p * (1 - p) / trials[c]);
    EXPECT_NEAR(hits[c] / trials[c], p, 4 * sd + 3.4e-4 * p) << "size " << classes[c];
  }
}

// A fresh per-CPU state is zeroed; the sampler must draw a first gap rather than sample the
// first allocation (which would weigh a 16-byte block as R bytes).
TEST(ByteSampler, FirstAllocationOnAFreshCpuIsNotAutomaticallySampled) {
  const uint64_t rate = 1 << 20;
  std::mt19937_64 rng(7);
  int sampled = 0;
  for (int i = 0; i < 10'000; ++i) {
    ByteSampler fresh(rate, 1);
    sampled += fresh.sample(16, 0, static_cast<uint32_t>(rng()));
  }
  // The first gap is at least table[0] * R / 2^16 = 512 B > 16 B, so none is sampled;
  // without the "armed" flag all 10'000 would be.
  EXPECT_EQ(sampled, 0);
}

// A request of 2^63 bytes or more (malloc(SIZE_MAX - k), which fails) is sampled like any
// huge block, and must not read as a negative size that pushes the next sample point away:
// after it, the small allocations that follow are sampled at the usual rate.
TEST(ByteSampler, HugeFailedRequestDoesNotMoveTheNextSamplePoint) {
  const uint64_t rate = 4096;
  std::mt19937_64 rng(11);
  ByteSampler s(rate, 1);
  int after = 0;
  for (int round = 0; round < 1000; ++round) {
    EXPECT_TRUE(s.sample(UINT64_MAX - 4096, 0, static_cast<uint32_t>(rng())));
    EXPECT_TRUE(s.sample(UINT64_MAX / 2 + 1, 0, static_cast<uint32_t>(rng())));
    // 8 x 4096 bytes right after: each point is at most 7.62 R away, so at least one is hit.
    int hit = 0;
    for (int i = 0; i < 8; ++i) hit += s.sample(4096, 0, static_cast<uint32_t>(rng()));
    after += hit > 0;
  }
  EXPECT_EQ(after, 1000);
}

// 200k allocations of 16 B .. 1 MiB, R = 64 KiB, 2 CPUs, half of them freed: the estimate of
// what is outstanding is within 5% of the truth (the standard deviation here is ~0.2% for
// bytes, so 5% is ~20 sd), and the count within 4 standard deviations computed from the
// true inclusion probabilities (the count is dominated by small blocks with p ~ 1e-3, so
// its sd is a few percent).
TEST(ByteSamplingEstimate, LargeWorkloadIsAccurate) {
  std::mt19937_64 rng(12345);
  const uint64_t rate = 64 * 1024;
  std::vector<uint64_t> sizes = log_uniform_sizes(200'000, 16, 1 << 20, rng);
  Trial t = byte_trial(sizes, rate, 0.5, 2, rng);
  RecordProperty("bytes_rel_error", std::to_string(t.bytes.estimate / t.true_bytes - 1));
  RecordProperty("count_rel_error", std::to_string(t.count.estimate / t.true_count - 1));
  EXPECT_NEAR(t.bytes.estimate, t.true_bytes, 0.05 * t.true_bytes);
  // Theoretical variance of the count estimate: sum over all outstanding of (1 - p)/p,
  // approximated with every allocation weighted by keep = 0.5.
  double var_count = 0;
  for (uint64_t s : sizes) {
    double p = byte_inclusion_probability(static_cast<double>(s), rate);
    var_count += 0.5 * (1 - p) / p;
  }
  EXPECT_NEAR(t.count.estimate, t.true_count, 4 * std::sqrt(var_count));
  EXPECT_TRUE(covers(t.bytes, t.true_bytes));
  EXPECT_LE(t.bytes.ci_lo, t.bytes.estimate);
  EXPECT_GE(t.bytes.ci_lo, t.bytes.sampled);
}

// Coverage: 200 seeded repetitions each.  A 95% interval should hold the truth in ~95% of
// runs; with 200 runs the binomial sd of that rate is 1.5%, so 90-99% is the accepted band.
// Bytes: 2,000 allocations of 16 B .. 256 KiB, R = 64 KiB, half freed (~200 sampled
// outstanding per run).  Count: 2,000 allocations of 512 B .. 8 KiB (~40 sampled
// outstanding); a count over sizes far below R is the documented weak spot (sampling.h).
TEST(ByteSamplingEstimate, NinetyFivePercentIntervalCoversTheTruth) {
  const uint64_t rate = 64 * 1024;
  int bytes_in = 0, count_in = 0;
  const int runs = 200;
  for (int seed = 0; seed < runs; ++seed) {
    std::mt19937_64 rng(1000 + seed);
    std::vector<uint64_t> wide = log_uniform_sizes(2'000, 16, 256 * 1024, rng);
    Trial w = byte_trial(wide, rate, 0.5, 2, rng);
    bytes_in += covers(w.bytes, w.true_bytes);
    std::vector<uint64_t> narrow = log_uniform_sizes(2'000, 512, 8 * 1024, rng);
    Trial n = byte_trial(narrow, rate, 0.5, 2, rng);
    count_in += covers(n.count, n.true_count);
  }
  RecordProperty("bytes_covered", bytes_in);
  RecordProperty("count_covered", count_in);
  EXPECT_GE(bytes_in, 0.90 * runs);
  EXPECT_LE(bytes_in, 0.99 * runs);
  EXPECT_GE(count_in, 0.90 * runs);
  EXPECT_LE(count_in, 0.99 * runs);
}

// -s N on the same large workload: N = 10 keeps 20k allocations; with sizes up to 1 MiB the
// bytes' sd is ~1.7%, so 5% is ~3 sd.  The count is a binomial: sd ~0.7%.
TEST(CallSamplingEstimate, LargeWorkloadIsAccurate) {
  std::mt19937_64 rng(4242);
  std::vector<uint64_t> sizes = log_uniform_sizes(200'000, 16, 1 << 20, rng);
  Trial t = calls_trial(sizes, 10, 0.5, rng);
  RecordProperty("bytes_rel_error", std::to_string(t.bytes.estimate / t.true_bytes - 1));
  RecordProperty("count_rel_error", std::to_string(t.count.estimate / t.true_count - 1));
  EXPECT_NEAR(t.bytes.estimate, t.true_bytes, 0.05 * t.true_bytes);
  EXPECT_NEAR(t.count.estimate, t.true_count, 0.03 * t.true_count);
  EXPECT_DOUBLE_EQ(t.count.estimate, 10 * t.count.sampled);
}

// Coverage for -s 20 over 200 seeds of 5,000 allocations (~125 sampled outstanding each);
// same 90-99% band as above.
TEST(CallSamplingEstimate, NinetyFivePercentIntervalCoversTheTruth) {
  int bytes_in = 0, count_in = 0;
  const int runs = 200;
  for (int seed = 0; seed < runs; ++seed) {
    std::mt19937_64 rng(5000 + seed);
    std::vector<uint64_t> sizes = log_uniform_sizes(5'000, 16, 64 * 1024, rng);
    Trial t = calls_trial(sizes, 20, 0.5, rng);
    bytes_in += covers(t.bytes, t.true_bytes);
    count_in += covers(t.count, t.true_count);
  }
  RecordProperty("bytes_covered", bytes_in);
  RecordProperty("count_covered", count_in);
  EXPECT_GE(bytes_in, 0.90 * runs);
  EXPECT_LE(bytes_in, 0.99 * runs);
  EXPECT_GE(count_in, 0.90 * runs);
  EXPECT_LE(count_in, 0.99 * runs);
}

TEST(EstimateAccumulator, ExactModeHasAZeroWidthInterval) {
  EstimateAccumulator acc;
  acc.add(100, 1.0);
  acc.add(28, 1.0);
  report::Estimate b = acc.bytes();
  EXPECT_EQ(b.sampled, 128);
  EXPECT_EQ(b.estimate, 128);
  EXPECT_EQ(b.ci_lo, 128);
  EXPECT_EQ(b.ci_hi, 128);
  EXPECT_EQ(acc.count().estimate, 2);
}

TEST(EstimateAccumulator, HorvitzThompsonSums) {
  EstimateAccumulator acc;
  acc.add(1000, 0.01);  // weight 100
  acc.add(10, 0.5);     // weight 2
  report::Estimate b = acc.bytes();
  EXPECT_EQ(b.sampled, 1010);
  EXPECT_DOUBLE_EQ(b.estimate, 100'000 + 20);
  EXPECT_DOUBLE_EQ(acc.count().estimate, 102);
  EXPECT_EQ(acc.samples(), 2);
  // The truth is never below what was seen, and the interval holds the estimate.
  EXPECT_GE(b.ci_lo, b.sampled);
  EXPECT_LT(b.ci_lo, b.estimate);
  EXPECT_GT(b.ci_hi, b.estimate);
}

// With equal weights and p -> 0 the sampled count is Poisson and the interval must be the
// exact Poisson (Garwood) one scaled by the weight: for 5 events [1.6235, 11.668] (chi-square
// tables: chi2(10, 0.025)/2, chi2(12, 0.975)/2).  Tolerance 1e-4 relative (p = 1e-6 makes the
// (1 - p) factors differ from 1 by 1e-6).
TEST(EstimateAccumulator, EqualWeightsGiveThePoissonInterval) {
  EstimateAccumulator acc;
  const double p = 1e-6;
  for (int i = 0; i < 5; ++i) acc.add(1, p);
  report::Estimate c = acc.count();
  EXPECT_NEAR(c.estimate, 5e6, 1);
  EXPECT_NEAR(c.ci_lo, 1.62349e6, 1.62349e6 * 1e-4);
  EXPECT_NEAR(c.ci_hi, 11.6683e6, 11.6683e6 * 1e-4);
}

// Many samples: the interval converges to estimate -+ 1.96 sd.  10,000 samples at p = 0.1:
// sd = sqrt(1e4 * 0.9 / 0.01) = 948.7; tolerance 1% of the half-width.
TEST(EstimateAccumulator, ManySamplesGiveTheNormalInterval) {
  EstimateAccumulator acc;
  for (int i = 0; i < 10'000; ++i) acc.add(1, 0.1);
  report::Estimate c = acc.count();
  double half = 1.959964 * std::sqrt(1e4 * 0.9 / 0.01);
  EXPECT_NEAR(c.estimate - c.ci_lo, half, 0.01 * half);
  EXPECT_NEAR(c.ci_hi - c.estimate, half, 0.01 * half);
}

TEST(EstimateAccumulator, AddingCopiesEqualsAddingOneByOne) {
  EstimateAccumulator one_by_one, at_once;
  for (int i = 0; i < 1000; ++i) one_by_one.add(48, 0.01);
  at_once.add(48, 0.01, 1000);
  EXPECT_EQ(at_once.samples(), 1000);
  EXPECT_NEAR(at_once.bytes().estimate, one_by_one.bytes().estimate, 1e-6);
  EXPECT_NEAR(at_once.bytes().ci_lo, one_by_one.bytes().ci_lo, 1e-3);
  EXPECT_NEAR(at_once.bytes().ci_hi, one_by_one.bytes().ci_hi, 1e-3);
  EXPECT_NEAR(at_once.count().ci_hi, one_by_one.count().ci_hi, 1e-6);
}

TEST(EstimateAccumulator, RemoveUndoesAddAndMergeAdds) {
  EstimateAccumulator a, b, both;
  a.add(4096, 0.3);
  a.add(16, 0.001);
  b.add(100, 0.5);
  both.add(4096, 0.3);
  both.add(16, 0.001);
  both.add(100, 0.5);
  a.merge(b);
  EXPECT_DOUBLE_EQ(a.bytes().estimate, both.bytes().estimate);
  EXPECT_DOUBLE_EQ(a.bytes().ci_hi, both.bytes().ci_hi);
  EXPECT_EQ(a.samples(), 3);

  both.remove(16, 0.001);
  EXPECT_NEAR(both.bytes().estimate, 4096 / 0.3 + 100 / 0.5, 1e-6);
  both.remove(4096, 0.3);
  both.remove(100, 0.5);
  EXPECT_EQ(both.samples(), 0);
  EXPECT_EQ(both.bytes().estimate, 0);  // exactly, no rounding residue
  EXPECT_EQ(both.bytes().ci_hi, 0);
  both.add(5, 0.0);  // could not have been sampled: ignored
  EXPECT_EQ(both.samples(), 0);
}

}  // namespace
}  // namespace leakwatch::analysis
