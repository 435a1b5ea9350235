#include "analysis/overhead_guard.h"

#include <algorithm>

#include <fmt/format.h>

namespace leakwatch::analysis {

OverheadGuard::OverheadGuard(double budget_percent, TrapCost trap, double min_cpu_s)
    : OverheadGuard(GuardOptions{budget_percent, min_cpu_s, 0, 0}, std::move(trap)) {}

OverheadGuard::OverheadGuard(const GuardOptions& options, TrapCost trap)
    : options_(options), trap_(std::move(trap)) {}

const OverheadEstimate& OverheadGuard::update(const OverheadReading& r) {
  OverheadEstimate e;
  e.target_cpu_s = r.target_cpu_s;
  e.elapsed_s = r.elapsed_s;
  e.probe_hits = r.entry_hits + r.return_hits;
  e.trap_cost_s = (static_cast<double>(r.entry_hits) * trap_.entry_ns +
                   static_cast<double>(r.return_hits) * trap_.return_ns) / 1e9;
  e.bpf_cost_s = static_cast<double>(r.bpf_run_ns) / 1e9;
  e.estimated_cost_s = e.trap_cost_s + e.bpf_cost_s;
  e.per_hit_cost_ns = e.probe_hits ? e.estimated_cost_s * 1e9 / static_cast<double>(e.probe_hits) : 0;
  if (r.elapsed_s > 0) {
    e.hits_per_s = static_cast<double>(e.probe_hits) / r.elapsed_s;
    e.cost_per_s = e.estimated_cost_s / r.elapsed_s;
  }
  // The target's CPU time includes the cost it paid: the slowdown is the cost over the
  // work that remains.  A cost that exceeds the CPU time measured (estimates are not
  // exact) is at least the budget's worth: the work is never taken below 1% of the CPU.
  if (e.target_cpu_s >= options_.min_cpu_s) {
    const double floor = e.target_cpu_s * 0.01;
    e.probe_share = std::min(1.0, e.estimated_cost_s / e.target_cpu_s);
    const double low_cost = e.estimated_cost_s * (1 - kTrapCostTolerance);
    e.work_s = std::max(e.target_cpu_s - e.estimated_cost_s, floor);
    e.overhead_percent = 100.0 * e.estimated_cost_s / e.work_s;
    e.overhead_lower_percent = 100.0 * low_cost / std::max(e.target_cpu_s - low_cost, floor);
    e.decided = r.elapsed_s >= options_.min_elapsed_s;
  }
  e.estimated_percent = e.overhead_percent;
  e.samples_at_probes = r.samples_at_probes;
  e.samples_work = r.samples_work;
  e.sampling_error = r.sampling_error;
  if (r.sampled && r.samples_at_probes + r.samples_work >= kMinCostSamples) {
    // No work sample at all: at least what one would give.
    e.measured = true;
    e.overhead_percent = 100.0 * static_cast<double>(r.samples_at_probes) /
                         static_cast<double>(std::max<uint64_t>(r.samples_work, 1));
    e.overhead_lower_percent = e.overhead_percent;
    e.baseline_allocator_share = r.baseline_allocator_share;
    const double share = r.baseline_allocator_share;
    if (share >= 0 && share <= kMaxBaselineAllocatorShare && e.overhead_percent > kCorrectAbovePercent) {
      const double total = static_cast<double>(r.samples_at_probes + r.samples_work);
      const double work = std::max(1.0, static_cast<double>(r.samples_work_elsewhere) / (1 - share));
      const double corrected = 100.0 * (total - work) / work;
      if (corrected > e.overhead_percent) {
        e.baseline_corrected = true;
        e.work_samples_estimated = work;
        e.overhead_percent = corrected;
      }
    }
  }
  est_ = e;
  return est_;
}

std::string OverheadGuard::describe() const {
  if (est_.measured) {
    const uint64_t n = est_.samples_at_probes + est_.samples_work;
    std::string s = fmt::format(
        "measured overhead {:.1f}% of the target's work after {:.1f} s: {} of its {} CPU samples "
        "were in the probes' traps ({:.0f}%), {} in its own work{}; {} probe hits, {:.0f}/s",
        est_.overhead_percent, est_.elapsed_s, est_.samples_at_probes, n,
        100.0 * static_cast<double>(est_.samples_at_probes) / static_cast<double>(n),
        est_.samples_work, est_.samples_work == 0 ? " (the overhead is at least this)" : "",
        est_.probe_hits, est_.hits_per_s);
    if (est_.baseline_corrected)
      s += fmt::format("; before the probes its allocator took {:.0f}% of its CPU, so its work is "
                       "{:.0f} samples' worth and the allocator's other samples are the probes' "
                       "(its code left cold by the traps)",
                       100 * est_.baseline_allocator_share, est_.work_samples_estimated);
    s += fmt::format(" (estimated from the trap cost, {}: {:.1f}%)",
                     trap_.source.empty() ? "trap cost unknown" : trap_.source,
                     est_.estimated_percent);
    return s;
  }
  std::string s = fmt::format(
      "estimated overhead {:.1f}% of the target's work after {:.1f} s: the probes cost {:.3f} s "
      "of its {:.3f} s of CPU ({} probe hits, {:.0f}/s, at {:.0f} ns each: trap {:.0f} ns entry, "
      "{:.0f} ns return, {}; BPF {:.0f} ns per hit)",
      est_.overhead_percent, est_.elapsed_s, est_.estimated_cost_s, est_.target_cpu_s,
      est_.probe_hits, est_.hits_per_s, est_.per_hit_cost_ns,
      trap_.entry_ns, trap_.return_ns, trap_.source.empty() ? "trap cost unknown" : trap_.source,
      est_.probe_hits ? est_.bpf_cost_s * 1e9 / static_cast<double>(est_.probe_hits) : 0.0);
  if (est_.probe_share >= 0.5)
    s += fmt::format("; the probes take {:.0f}% of its CPU, so its work ({:.3f} s) is a small "
                     "remainder known roughly: the overhead is at least {:.0f}%",
                     100 * est_.probe_share, est_.work_s, est_.overhead_lower_percent);
  if (!est_.sampling_error.empty()) s += fmt::format(" (not measured: {})", est_.sampling_error);
  return s;
}

std::string OverheadGuard::stop_reason() const {
  if (!est_.decided || est_.overhead_percent <= options_.budget_percent) return {};
  std::string why = fmt::format("{} is over the budget of {:.1f}%", describe(), options_.budget_percent);
  if (options_.planned_s > 0)
    why += fmt::format(": the {:.0f} s trace would have cost the target {:.1f} s of CPU",
                       options_.planned_s, predicted_cost_s());
  return why;
}

}  // namespace leakwatch::analysis
