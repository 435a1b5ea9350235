// The agent's layer-3 investigation: leakwatch memleak's probes and tracker run in-process
// on one target for a bounded time, under an overhead guard.
//
// Overhead guard: the cost imposed on the target is estimated every second as
//   probe traps x measured trap cost + BPF program run time (kernel.bpf_stats)
// against the CPU time the target used meanwhile; above the budget the investigation ends
// early and keeps its report.  Trap costs are this project's measurements on kernel 6.18
// (KERNEL-FACTS.md): ~0.7 us for an emulated uprobe entry, ~0.5 us more for a return.
//
// Thread-safety: one investigation at a time per instance.
#pragma once

#include "agent/investigation.h"

namespace leakwatch::cli {

class MemleakInvestigator : public agent::Investigator {
 public:
  Result<agent::InvestigationResult> run(const agent::InvestigationRequest& request,
                                         const std::atomic<bool>& stop) override;
};

}  // namespace leakwatch::cli
