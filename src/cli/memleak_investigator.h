// The agent's layer-3 investigation: leakwatch memleak's probes and tracker run in-process
// on one target for a bounded time, under an overhead guard.
//
// Overhead guard (analysis/overhead_guard.h): the cost imposed on the target is estimated
// on every tick of the session loop (100 ms) as probe traps x the host's measured trap cost
// (probe/trap_calibration.h) + BPF program run time (kernel.bpf_stats) against the CPU time
// the target used meanwhile.  From the first 0.25 s on, an estimate over the budget ends the
// investigation (it keeps its report, and says why with the figures).
//
// Thread-safety: one investigation at a time per instance.
#pragma once

#include <functional>

#include "agent/investigation.h"
#include "probe/trap_calibration.h"
#include "session/memleak_session.h"

namespace leakwatch::cli {

// The session options of an investigation: what `leakwatch memleak -p PID -o 500` with the
// request's sampling would use.
session::MemleakSessionOptions investigation_options(const agent::InvestigationRequest& request);

class MemleakInvestigator : public agent::Investigator {
 public:
  // `trap_cost`: the host's calibration (a probe::TrapCalibrationCache's get(), shared by
  // the agent's investigations).  Without one, the investigator measures it on its first run.
  MemleakInvestigator();
  explicit MemleakInvestigator(std::function<Result<probe::TrapCalibration>()> trap_cost);
  Result<agent::InvestigationResult> run(const agent::InvestigationRequest& request,
                                         const std::atomic<bool>& stop) override;

 private:
  std::function<Result<probe::TrapCalibration>()> trap_cost_;
};

}  // namespace leakwatch::cli
