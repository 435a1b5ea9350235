#include "cli/memleak_investigator.h"

#include <bpf/bpf.h>
#include <algorithm>
#include <unistd.h>

#include <memory>

#include "cli/inject_step.h"
#include "cli/investigation_end.h"
#include "cli/overhead_estimate.h"
#include "common/atomic_file.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/procfs.h"
#include "metrics/proc_parse.h"
#include "session/driver.h"
#include "session/inprocess.h"
#include "session/memleak_session.h"

namespace leakwatch::cli {
namespace {

// History points for the verdicts: every 5 s, more often in a short time box (the
// verdicts want a dozen points).
double report_every_s(double duration_s) { return std::clamp(duration_s / 12, 1.0, 5.0); }
// The guard's early window: the call rate of the first fraction of a second predicts the
// whole trace's cost, so an over-budget trace stops within about a second.
constexpr double kGuardWindowS = 0.25;

}  // namespace

session::MemleakSessionOptions investigation_options(const agent::InvestigationRequest& req) {
  session::MemleakSessionOptions o;
  o.pid = req.pid;
  o.comm = req.comm;
  if (req.sampling.mode != report::SamplingMode::kExact && req.sampling.rate > 1)
    o.filter.sampling = req.sampling;
  o.reports.older_ms = 500;
  return o;
}

MemleakInvestigator::MemleakInvestigator()
    : MemleakInvestigator([cache = std::make_shared<probe::TrapCalibrationCache>()] {
        return cache->get();
      }) {}

MemleakInvestigator::MemleakInvestigator(std::function<Result<probe::TrapCalibration>()> trap_cost)
    : trap_cost_(std::move(trap_cost)) {}

Result<agent::InvestigationResult> MemleakInvestigator::run(const agent::InvestigationRequest& req,
                                                            const std::atomic<bool>& stop) {
  if (!process_exists(req.pid)) return fail("investigation: no such process: {}", req.pid);
  // inject: always -> the sampling library first (memleak --inject); a process it cannot go
  // into is traced with the uprobes, and the report says why.
  session::MemleakSessionOptions options = investigation_options(req);
  std::vector<std::string> inject_notes;
  auto inject = [&]() {
    auto step = ensure_injected(req.pid, options.filter.sampling,
                                options.filter.sampling.mode != report::SamplingMode::kExact, false);
    if (!step) {
      log::warn("investigation of pid {}: {}", req.pid, step.error().message);
      inject_notes.push_back(step.error().message + "; traced with the allocator's uprobes");
      return false;
    }
    options.filter.sampling = step->sampling;
    inject_notes.insert(inject_notes.end(), step->notes.begin(), step->notes.end());
    return true;
  };
  if (req.inject == "always") (void)inject();
  // The target sampled from here: its CPU before the probes is the cost guard's baseline.
  CostSampling before = start_cost_sampling(req.pid);
  // Measured (once per kernel and CPU) before the trace starts, not during it.
  auto trap_cost = trap_cost_();
  auto created = session::MemleakSession::Create(options);
  if (!created) return std::unexpected(created.error());
  session::MemleakSession& s = **created;
  if (s.inprocess())
    log::info("investigation of pid {}: in-process ({})", req.pid, session::describe_sampling(s.sampling()));

  analysis::GuardOptions guard_options;
  guard_options.budget_percent = req.overhead_budget_percent;
  guard_options.min_elapsed_s = kGuardWindowS;
  guard_options.planned_s = req.duration_s;
  analysis::OverheadGuard guard(guard_options, guard_trap_cost(std::move(trap_cost), s.inprocess()));
  SessionCostReader cost_reader(s, req.pid, std::move(before));
  auto read_overhead = [&] { return guard.update(cost_reader.read()); };

  session::DriveOptions d;
  d.interval_s = report_every_s(req.duration_s);
  d.duration_s = req.duration_s;
  d.stop = &stop;
  d.guard = [&] {
    read_overhead();
    return guard.stop_reason();
  };
  session::DriveOutcome out = session::drive(s, d, [&] { (void)s.report(false); });
  if (!out.started) return fail("investigation: {}", out.detail);

  agent::InvestigationResult result;
  result.end = investigation_end(out.cause);
  result.overhead = read_overhead();
  result.report = s.report(true);
  result.report.target.cgroup = req.cgroup;
  if (out.cause == session::StopCause::kGuard) {
    result.stop_reason = out.detail;
    result.report.notes.push_back(out.detail);
  }
  const double elapsed = s.elapsed_s();
  // inject: over_budget -> the uprobes cost too much: go on in-process for the rest of the
  // time box instead of ending there.  The uprobes go first: a thread trapped in one sits
  // at the allocator's entry, where no injection is safe.
  const bool go_in_process = out.cause == session::StopCause::kGuard &&
                             req.inject == "over_budget" && !s.inprocess();
  created->reset();  // (drive() has stopped it; its BPF objects go now)
  if (go_in_process && inject()) {
    agent::InvestigationRequest rest = req;
    rest.inject = "never";
    rest.duration_s = std::max(1.0, req.duration_s - elapsed);
    auto second = run(rest, stop);
    if (second) {
      second->report.notes.push_back(fmt::format(
          "investigation: the allocator's uprobes cost {:.1f}% of the target's CPU after {:.1f} s "
          "(budget {}%): the sampling library was injected and the trace went on in-process",
          result.overhead.overhead_percent, elapsed, req.overhead_budget_percent));
      second->report.notes.insert(second->report.notes.end(), inject_notes.begin(),
                                  inject_notes.end());
      return second;
    }
    inject_notes.push_back("the in-process trace after the injection failed: " +
                           second.error().message);
  }
  result.report.notes.insert(result.report.notes.end(), inject_notes.begin(), inject_notes.end());
  result.report.notes.push_back(fmt::format(
      "investigation: {} ({}); ended: {}; {}", req.reason, req.target,
      agent::to_string(result.end), guard.describe()));
  return result;
}

}  // namespace leakwatch::cli
