// The overhead guard of an allocation trace: what the trace costs the traced process, as a
// share of the CPU time the process used meanwhile, and whether it is over budget.
//
//   cost = entry traps x entry trap cost + return traps x return trap cost
//          + BPF programs' run time (kernel.bpf_stats)
//   overhead = cost / (target CPU time - cost)       (the target's own work)
//
// A prediction, early: the cost is a rate (probe hits per second x cost per hit), so the
// first fraction of a second (`min_elapsed_s`, once the target has used `min_cpu_s` of CPU)
// tells what the whole investigation will cost; over the budget, the trace stops then,
// not after the damage.
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
  double elapsed_s = 0;          // of the trace, at the reading
  double hits_per_s = 0;         // probe hits per second of the trace
  double cost_per_s = 0;         // the cost in CPU seconds per second of the trace
  bool decided = false;          // enough time and CPU for overhead_percent to mean something
  // estimated cost / target CPU (at most 1): well determined even where the work is not.
  // The work is what remains of the CPU time after the cost: when the probes take most of
  // it, a small error in the trap cost is a large one in that remainder (at a 30x slowdown
  // a 3% error doubles it), so the overhead is then also given as a lower bound, with the
  // trap cost taken kTrapCostTolerance lower.  (The user-mode CPU time is no better a
  // measure of the work here: with tick-based accounting in this VM it read 6x the work
  // of a traced allocation loop, bench/overhead_estimate.sh.)
  double probe_share = 0;
  double work_s = 0;                  // the target's own work, as estimated
  double overhead_lower_percent = 0;
};

// How far the measured trap cost may be from what the target's traps really cost (the
// calibration and the trace run at different moments of a shared host: bench/
// overhead_estimate.sh measured up to 1.3x).
inline constexpr double kTrapCostTolerance = 0.3;

struct GuardOptions {
  double budget_percent = 10;   // the largest overhead allowed, % of the target's own work
  double min_cpu_s = 0.05;      // target CPU time before a decision (a few clock ticks)
  double min_elapsed_s = 0;     // trace time before a decision (the early window)
  double planned_s = 0;         // the trace's planned length: the prediction's horizon
};

class OverheadGuard {
 public:
  // `budget_percent`: the largest overhead allowed, as a percentage of the target's own
  // work; `min_cpu_s`: CPU time the target must have used before a decision is made (a
  // few ms of CPU make a noisy ratio).
  OverheadGuard(double budget_percent, TrapCost trap, double min_cpu_s = 0.05);
  OverheadGuard(const GuardOptions& options, TrapCost trap);

  // Updates the estimate from a reading and returns it.
  const OverheadEstimate& update(const OverheadReading& r);
  const OverheadEstimate& estimate() const { return est_; }
  // Non-empty when the trace should stop: the reason, with the figures (no decision before
  // min_elapsed_s and min_cpu_s).
  std::string stop_reason() const;
  // The estimate in a sentence: "estimated overhead 3.2% of the target's work (...)".
  std::string describe() const;
  // The cost the whole planned trace would have, at the rate seen so far (CPU seconds).
  double predicted_cost_s() const { return est_.cost_per_s * options_.planned_s; }
  const TrapCost& trap_cost() const { return trap_; }

 private:
  GuardOptions options_;
  TrapCost trap_;
  OverheadEstimate est_;
};

}  // namespace leakwatch::analysis
