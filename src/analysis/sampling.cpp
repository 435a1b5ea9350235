#include "analysis/sampling.h"

#include "analysis/gamma.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace leakwatch::analysis {

double byte_inclusion_probability(double size, double rate_bytes) {
  if (size <= 0) return 0;
  if (rate_bytes <= 1) return 1;
  // 1 - exp(-x) == -expm1(-x), without the cancellation that loses all digits for x << 1.
  return -std::expm1(-size / rate_bytes);
}

double inclusion_probability(const report::Sampling& sampling, uint64_t size) {
  switch (sampling.mode) {
    case report::SamplingMode::kCalls:
      return sampling.rate <= 1 ? 1.0 : 1.0 / static_cast<double>(sampling.rate);
    case report::SamplingMode::kBytes:
      return byte_inclusion_probability(static_cast<double>(size),
                                        static_cast<double>(sampling.rate));
    case report::SamplingMode::kExact:
      break;
  }
  return 1.0;
}

double sample_weight(const report::Sampling& sampling, uint64_t size) {
  double p = inclusion_probability(sampling, size);
  return p > 0 ? 1.0 / p : 0.0;
}

std::vector<uint32_t> exponential_table(size_t n) {
  std::vector<uint32_t> table(n);
  const double scale = static_cast<double>(1u << LW_EXP_TABLE_SHIFT);
  for (size_t i = 0; i < n; ++i) {
    // Mid-quantile u = (i + 0.5)/n of the uniform; -ln(1 - u) is the Exp(1) quantile.
    // log1p(-u) keeps precision for small u (the first entries).
    double u = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
    table[i] = static_cast<uint32_t>(std::lround(-std::log1p(-u) * scale));
  }
  return table;
}

ByteSampler::ByteSampler(uint64_t rate_bytes, unsigned cpus)
    : rate_bytes_(rate_bytes),
      table_(exponential_table(LW_EXP_TABLE_SIZE)),
      state_(std::max(cpus, 1u), lw_byte_sampler{}) {}

bool ByteSampler::sample(uint64_t size, unsigned cpu, uint32_t rnd) {
  lw_byte_sampler& st = state_[cpu % state_.size()];
  return lw_sample_bytes(&st, size, rate_bytes_, table_.data(), rnd) != 0;
}

std::vector<size_t> simulate_byte_sampling(std::span<const uint64_t> sizes, uint64_t rate_bytes,
                                           std::mt19937_64& rng, unsigned cpus) {
  cpus = std::max(cpus, 1u);
  ByteSampler sampler(rate_bytes, cpus);
  std::vector<size_t> sampled;
  for (size_t i = 0; i < sizes.size(); ++i) {
    unsigned cpu = cpus == 1 ? 0 : static_cast<unsigned>(rng() % cpus);
    auto rnd = static_cast<uint32_t>(rng());
    if (sampler.sample(sizes[i], cpu, rnd)) sampled.push_back(i);
  }
  return sampled;
}

report::Estimate make_estimate(double sampled, double estimate, double variance,
                               double max_unseen) {
  report::Estimate e;
  e.sampled = sampled;
  e.estimate = std::max(estimate, sampled);
  e.ci_lo = e.ci_hi = e.estimate;
  double unseen = e.estimate - sampled;
  if (!(unseen > 0) || !(variance > 0)) return e;
  double m = std::max(max_unseen, 0.0);
  e.ci_lo = sampled + gamma_quantile(0.025, unseen * unseen / variance, variance / unseen);
  double u = unseen + m, v = variance + m * m;
  e.ci_hi = sampled + gamma_quantile(0.975, u * u / v, v / u);
  // Rounding in the quantiles must not put the bounds on the wrong side of the estimate.
  e.ci_lo = std::min(e.ci_lo, e.estimate);
  e.ci_hi = std::max(e.ci_hi, e.estimate);
  return e;
}

void EstimateAccumulator::apply(Sums& s, double x, double p, double sign) {
  s.sampled += sign * x;
  s.estimate += sign * x / p;
  s.variance += sign * (1 - p) / (p * p) * x * x;
  if (sign > 0) s.max_unseen = std::max(s.max_unseen, x * (1 - p) / p);  // one copy's share
}

void EstimateAccumulator::add(double size, double inclusion_probability) {
  add(size, inclusion_probability, 1);
}

void EstimateAccumulator::add(double size, double inclusion_probability, uint64_t copies) {
  if (!(inclusion_probability > 0) || copies == 0) return;
  double p = std::min(inclusion_probability, 1.0);
  auto n = static_cast<double>(copies);
  apply(bytes_, size, p, n);
  apply(count_, 1, p, n);
  samples_ += static_cast<int64_t>(copies);
}

void EstimateAccumulator::remove(double size, double inclusion_probability) {
  if (!(inclusion_probability > 0) || samples_ == 0) return;
  double p = std::min(inclusion_probability, 1.0);
  if (--samples_ == 0) {
    bytes_ = {};
    count_ = {};
    return;
  }
  apply(bytes_, size, p, -1);
  apply(count_, 1, p, -1);
}

void EstimateAccumulator::merge(const EstimateAccumulator& other) {
  for (auto [mine, theirs] : {std::pair{&bytes_, &other.bytes_}, {&count_, &other.count_}}) {
    mine->sampled += theirs->sampled;
    mine->estimate += theirs->estimate;
    mine->variance += theirs->variance;
    mine->max_unseen = std::max(mine->max_unseen, theirs->max_unseen);
  }
  samples_ += other.samples_;
}

// Subtraction in remove() can leave tiny negative residues; clamp them.
report::Estimate EstimateAccumulator::bytes() const {
  return make_estimate(std::max(bytes_.sampled, 0.0), bytes_.estimate, bytes_.variance,
                       bytes_.max_unseen);
}

report::Estimate EstimateAccumulator::count() const {
  return make_estimate(std::max(count_.sampled, 0.0), count_.estimate, count_.variance,
                       count_.max_unseen);
}

}  // namespace leakwatch::analysis
