// The overhead guard of an allocation trace: what the trace costs the traced process, as a
// share of the CPU time the process used meanwhile, and whether it is over budget.
//
//   cost = entry traps x entry trap cost + return traps x return trap cost
//          + BPF programs' run time (kernel.bpf_stats)
//   overhead = cost / target CPU time
//
// A uprobe's cost is mostly the kernel's trap, which BPF run time does not include and
// which differs by an order of magnitude between hosts: the trap costs come from a
// measurement on the host (probe/trap_calibration.h), never from constants.
//
// Thread-safety: not thread-safe; one owner feeds it.
#pragma once

#include <cstdint>
#include <string>

namespace leakwatch::analysis {

// What one probe hit costs the traced thread beyond the BPF program: the kernel's trap.
struct TrapCost {
  double entry_ns = 0;    // a uprobe hit (entry, or an emulated instruction)
  double return_ns = 0;   // a return probe on top of its entry
  std::string source;     // how it was obtained ("measured at start: ...")
};

// One reading of the trace's counters and the target's CPU time since the trace started.
struct OverheadReading {
  uint64_t entry_hits = 0;     // entry probe hits (allocations, frees, hooks)
  uint64_t return_hits = 0;    // return probe runs
  uint64_t bpf_run_ns = 0;     // BPF programs' run time
  double target_cpu_s = 0;     // CPU time the target used
  double elapsed_s = 0;        // since the trace started
};

struct OverheadEstimate {
  double target_cpu_s = 0;       // CPU time the target used during the trace
  uint64_t probe_hits = 0;       // entry + return probe runs
  double per_hit_cost_ns = 0;    // (trap part + BPF part) / hits
  double trap_cost_s = 0;        // the kernel's traps
  double bpf_cost_s = 0;         // the BPF programs
  double estimated_cost_s = 0;   // trap_cost_s + bpf_cost_s
  double overhead_percent = 0;   // estimated_cost / (target CPU - estimated cost) x 100
};

class OverheadGuard {
 public:
  // `budget_percent`: the largest overhead allowed, as a percentage of the target's own
  // work; `min_cpu_s`: CPU time the target must have used before a decision is made (a
  // few ms of CPU make a noisy ratio).
  OverheadGuard(double budget_percent, TrapCost trap, double min_cpu_s = 0.05);

  // Updates the estimate from a reading and returns it.
  const OverheadEstimate& update(const OverheadReading& r);
  const OverheadEstimate& estimate() const { return est_; }
  // Non-empty when the trace should stop: the reason, with the figures.
  std::string stop_reason() const;
  const TrapCost& trap_cost() const { return trap_; }

 private:
  double budget_percent_;
  TrapCost trap_;
  double min_cpu_s_;
  OverheadEstimate est_;
};

}  // namespace leakwatch::analysis
