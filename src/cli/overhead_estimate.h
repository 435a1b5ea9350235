// What an allocation trace costs its target, as the overhead guard (analysis/overhead_guard.h)
// sees it, for the agent's investigations and `leakwatch memleak -v` alike: the host's
// measured trap costs (probe/trap_calibration.h), the session's probe hits and BPF run
// time, and the target's CPU time since the trace began.
//
// Thread-safety: SessionCostReader is used by the thread driving its session.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "analysis/overhead_guard.h"
#include "common/fd.h"
#include "common/result.h"
#include "probe/cost_sampler.h"
#include "probe/trap_calibration.h"
#include "session/memleak_session.h"

namespace leakwatch::cli {

// The guard's trap cost from the host's calibration: an in-process session's probes sit on
// the library's 5-byte NOP hooks (entry only), the others on the allocator's entries and
// returns.  Without a calibration the trap part is 0 and the source says why (the estimate
// is then the BPF run time alone: a lower bound, and said to be one).
analysis::TrapCost guard_trap_cost(const Result<probe::TrapCalibration>& calibration, bool inprocess);

// The kernel functions of a uprobe's trap (probe::kTrapFunctions) located in /proc/kallsyms
// for the cost sampler, once per process (core kernel text does not move; the file has
// ~120,000 lines); empty when kallsyms could not be read then.
std::vector<std::pair<uint64_t, uint64_t>> kernel_trap_ranges();

// A process's CPU time (every thread, living or gone), in seconds; < 0 when it is gone.
struct ProcessCpu {
  double total_s = -1;  // utime + stime
};
ProcessCpu process_cpu(int pid);

// The cost sampler, started before the probes are attached: what it samples until the
// SessionCostReader takes it is the untraced baseline.
struct CostSampling {
  std::unique_ptr<probe::CostSampler> sampler;
  std::string error;  // why there is none
};
CostSampling start_cost_sampling(int pid);

// Readings of a running MemleakSession for the guard.  Construct it right before the
// session starts: the target's CPU time is counted, and sampled (probe/cost_sampler.h),
// from there.  BPF run-time statistics are enabled while it lives.
class SessionCostReader {
 public:
  // `before`: sampling started before the probes (start_cost_sampling); without it the
  // sampler starts here, with no baseline.
  SessionCostReader(const session::MemleakSession& s, int pid, CostSampling before = {});
  // The counters and CPU time now; once the target is gone (its CPU time cannot be read),
  // the last reading made while it ran: hits counted after it would have no CPU time to
  // be weighed against.
  analysis::OverheadReading read();

 private:
  const session::MemleakSession& s_;
  int pid_;
  ProcessCpu cpu_start_;
  UniqueFd stats_fd_;
  std::unique_ptr<probe::CostSampler> sampler_;
  std::string sampler_error_;
  std::vector<std::pair<uint64_t, uint64_t>> baseline_;  // samples before the probes
  std::optional<double> baseline_share_;                // allocator's share of them
  std::vector<probe::ProbeSite> sites_;  // of the probes attached so far
  size_t sites_from_ = 0;                // attach results they were made from
  std::optional<analysis::OverheadReading> last_;
};

}  // namespace leakwatch::cli
