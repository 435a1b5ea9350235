// The overhead guard of an allocation trace: what the trace costs the traced process, as a
// share of the CPU time the process used meanwhile, and whether it is over budget.
//
//   measured:   overhead = CPU samples at the probes / CPU samples of its own work
//               (probe/cost_sampler.h: where the target's CPU time goes, sampled)
//   estimated:  cost = entry traps x entry trap cost + return traps x return trap cost
//                      + BPF programs' run time (kernel.bpf_stats)
//               overhead = cost / (target CPU time - cost)       (the target's own work)
//
// The measured figure is used once it rests on kMinCostSamples samples; the estimate is the
// fallback (no perf events) and a cross-check, given beside it.  Where the probes take most
// of the CPU the estimate's work is a small remainder of two large numbers (at a 40x
// slowdown a 3% error in the trap cost doubles it); the sampled ratio has no such remainder.
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
  // The target's CPU samples since the trace started (probe/cost_sampler.h); sampled is
  // false without a sampler (sampling_error says why).
  bool sampled = false;
  uint64_t samples_at_probes = 0;
  uint64_t samples_work = 0;
  uint64_t samples_work_elsewhere = 0;  // of the work, outside the allocator's objects
  // Share of the untraced target's samples (before the probes) in the allocator's
  // objects; < 0 when no baseline was taken.
  double baseline_allocator_share = -1;
  std::string sampling_error;
};

// Samples the measured overhead needs before it replaces the estimate (at ~1 kHz, a
// twentieth of a second of the target's CPU).
inline constexpr uint64_t kMinCostSamples = 50;
// The baseline correction applies when the allocator took at most this share of the
// untraced target (beyond it the work elsewhere is too small a part to scale up) and the
// measured overhead is above kCorrectAbovePercent (below it, cache damage is minor and the
// correction's own noise is not).
inline constexpr double kMaxBaselineAllocatorShare = 0.8;
inline constexpr double kCorrectAbovePercent = 100;

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
  // The measured split (OverheadReading::sampled), and whether overhead_percent is it.
  uint64_t samples_at_probes = 0;
  uint64_t samples_work = 0;
  bool measured = false;
  // Where the probes take most of the CPU, each trap leaves the allocator's code cold, and
  // its samples grow: the work is then the samples elsewhere scaled by the baseline's
  // share (the allocator's untraced cost), the rest of the allocator's samples the probes'.
  bool baseline_corrected = false;
  double baseline_allocator_share = -1;
  double work_samples_estimated = 0;
  double estimated_percent = 0;       // the calibrated estimate, kept beside a measurement
  std::string sampling_error;
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
