// The agent's layer-3 investigation: leakwatch memleak's probes and tracker run in-process
// on one target for a bounded time, under an overhead guard.
//
// Overhead guard (analysis/overhead_guard.h): the cost imposed on the target is estimated
// on every tick of the session loop as probe traps x trap cost + BPF program run time
// (kernel.bpf_stats) against the CPU time the target used meanwhile; above the budget the
// investigation ends early and keeps its report.
//
// Thread-safety: one investigation at a time per instance.
#pragma once

#include "agent/investigation.h"
#include "session/memleak_session.h"

namespace leakwatch::cli {

// The session options of an investigation: what `leakwatch memleak -p PID -o 500` with the
// request's sampling would use.
session::MemleakSessionOptions investigation_options(const agent::InvestigationRequest& request);

class MemleakInvestigator : public agent::Investigator {
 public:
  Result<agent::InvestigationResult> run(const agent::InvestigationRequest& request,
                                         const std::atomic<bool>& stop) override;
};

}  // namespace leakwatch::cli
