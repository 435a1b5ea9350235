#include "cli/growth_locator.h"

#include <fmt/format.h>

#include "cli/growth_cmd.h"
#include "cli/investigation_end.h"
#include "common/procfs.h"
#include "session/driver.h"
#include "session/growth_session.h"

namespace leakwatch::cli {

Result<agent::GrowthResult> TracepointGrowthLocator::run(const agent::InvestigationRequest& req,
                                                         const std::atomic<bool>& stop) {
  if (!process_exists(req.pid)) return fail("growth step: no such process: {}", req.pid);
  const GrowthOptions defaults;  // the CLI's: what BENCHMARKS.md measured
  session::GrowthSessionOptions o;
  o.pid = req.pid;
  o.comm = req.comm;
  o.probe.sample_period = defaults.sample_faults;
  o.probe.max_stacks = defaults.max_stacks;
  auto s = session::GrowthSession::Create(o);
  if (!s) return fail("growth step: {}", s.error().message);

  session::DriveOptions d;
  d.duration_s = req.duration_s;
  d.stop = &stop;
  session::DriveOutcome out = session::drive(**s, d, {});
  if (!out.started) return fail("growth step: {}", out.detail);

  agent::GrowthResult result;
  result.report = (*s)->report(true);
  result.report.target.cgroup = req.cgroup;
  result.end = investigation_end(out.cause);
  result.report.notes.push_back(fmt::format("growth step of an investigation: {} ({}); ended: {}",
                                            req.reason, req.target,
                                            agent::to_string(result.end)));
  return result;
}

}  // namespace leakwatch::cli
