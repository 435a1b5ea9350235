#include "analysis/overhead_guard.h"

#include <fmt/format.h>

namespace leakwatch::analysis {

OverheadGuard::OverheadGuard(double budget_percent, TrapCost trap, double min_cpu_s)
    : budget_percent_(budget_percent), trap_(std::move(trap)), min_cpu_s_(min_cpu_s) {}

const OverheadEstimate& OverheadGuard::update(const OverheadReading& r) {
  OverheadEstimate e;
  e.target_cpu_s = r.target_cpu_s;
  e.probe_hits = r.entry_hits + r.return_hits;
  e.trap_cost_s = (static_cast<double>(r.entry_hits) * trap_.entry_ns +
                   static_cast<double>(r.return_hits) * trap_.return_ns) / 1e9;
  e.bpf_cost_s = static_cast<double>(r.bpf_run_ns) / 1e9;
  e.estimated_cost_s = e.trap_cost_s + e.bpf_cost_s;
  e.per_hit_cost_ns = e.probe_hits ? e.estimated_cost_s * 1e9 / static_cast<double>(e.probe_hits) : 0;
  // The target's CPU time includes the cost it paid: the slowdown is the cost over the
  // work that remains.  A cost that exceeds the CPU time measured (estimates are not
  // exact) is at least the budget's worth.
  if (e.target_cpu_s >= min_cpu_s_) {
    double work = e.target_cpu_s - e.estimated_cost_s;
    e.overhead_percent = work > e.target_cpu_s * 0.01 ? 100.0 * e.estimated_cost_s / work
                                                      : 100.0 * e.estimated_cost_s / (e.target_cpu_s * 0.01);
  }
  est_ = e;
  return est_;
}

std::string OverheadGuard::stop_reason() const {
  if (est_.target_cpu_s < min_cpu_s_ || est_.overhead_percent <= budget_percent_) return {};
  return fmt::format("estimated overhead {:.1f}% of the target's work is over the budget of "
                     "{:.1f}% ({} probe hits at {:.0f} ns each: trap {:.0f} ns entry, {:.0f} ns "
                     "return)",
                     est_.overhead_percent, budget_percent_, est_.probe_hits, est_.per_hit_cost_ns,
                     trap_.entry_ns, trap_.return_ns);
}

}  // namespace leakwatch::analysis
