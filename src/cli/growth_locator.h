// The agent's layer-2 step: `leakwatch growth`'s tracepoint programs and tracker run
// in-process on one process (session::GrowthSession) for the growth step's share of the
// investigation's time box, before the allocation trace.  Same defaults as
// `leakwatch growth -p PID`: 1 in 16 fault stacks, leakwatch's frame-pointer walk,
// kmem:rss_stat on.
//
// Thread-safety: one run() at a time per instance (the agent makes one per investigation).
#pragma once

#include "agent/investigation.h"

namespace leakwatch::cli {

class TracepointGrowthLocator : public agent::GrowthLocator {
 public:
  Result<agent::GrowthResult> run(const agent::InvestigationRequest& request,
                                  const std::atomic<bool>& stop) override;
};

}  // namespace leakwatch::cli
