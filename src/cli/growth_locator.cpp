#include "cli/growth_locator.h"

#include <fmt/format.h>

#include "cli/growth_cmd.h"
#include "common/proc_maps.h"
#include "tracker/growth_tracker.h"

namespace leakwatch::cli {

Result<agent::GrowthResult> TracepointGrowthLocator::run(const agent::InvestigationRequest& req,
                                                         const std::atomic<bool>& stop) {
  if (!process_exists(req.pid)) return fail("growth step: no such process: {}", req.pid);
  const GrowthOptions defaults;  // the CLI's: what BENCHMARKS.md measured
  tracker::GrowthSessionConfig cfg;
  cfg.probe.pid = req.pid;
  cfg.probe.sample_period = defaults.sample_faults;
  cfg.probe.max_stacks = defaults.max_stacks;
  cfg.target.pid = req.pid;
  cfg.target.comm = req.comm.empty() ? process_comm(req.pid) : req.comm;
  cfg.target.cgroup = req.cgroup;
  auto rep = tracker::run_growth_for(cfg, req.duration_s, stop);
  if (!rep) return fail("growth step: {}", rep.error().message);

  agent::GrowthResult result;
  result.report = std::move(*rep);
  // run_growth_for returns at the time box, on `stop` or when the process is gone.
  if (!process_exists(req.pid))
    result.end = agent::InvestigationEnd::kTargetExited;
  else if (stop.load())
    result.end = agent::InvestigationEnd::kStopped;
  else
    result.end = agent::InvestigationEnd::kDuration;
  result.report.notes.push_back(fmt::format("growth step of an investigation: {} ({}); ended: {}",
                                            req.reason, req.target,
                                            agent::to_string(result.end)));
  return result;
}

}  // namespace leakwatch::cli
