#include "cli/memleak_investigator.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include "cli/inject_step.h"
#include "cli/investigation_end.h"
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

constexpr double kEntryTrapNs = 700;   // emulated uprobe entry (KERNEL-FACTS.md)
constexpr double kReturnTrapNs = 500;  // uretprobe on top of the entry
constexpr double kReportEveryS = 5;    // history points for the verdicts

// utime + stime of a process, in seconds; < 0 when it is gone.
double process_cpu_s(int pid) {
  auto text = read_file(fmt::format("/proc/{}/stat", pid));
  if (!text) return -1;
  auto st = metrics::parse_proc_stat(*text);
  if (!st) return -1;
  return static_cast<double>(st->utime_ticks + st->stime_ticks) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

session::MemleakSessionOptions investigation_options(const agent::InvestigationRequest& req) {
  session::MemleakSessionOptions o;
  o.pid = req.pid;
  o.comm = req.comm;
  if (req.sample_rate > 1) o.filter.sampling = {report::SamplingMode::kCalls, req.sample_rate};
  o.reports.older_ms = 500;
  return o;
}

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
  // BPF run-time statistics stay enabled while this descriptor is open.
  UniqueFd stats_fd(bpf_enable_stats(BPF_STATS_RUN_TIME));
  auto created = session::MemleakSession::Create(options);
  if (!created) return std::unexpected(created.error());
  session::MemleakSession& s = **created;
  if (s.inprocess())
    log::info("investigation of pid {}: in-process ({})", req.pid, session::describe_sampling(s.sampling()));

  analysis::OverheadGuard guard(req.overhead_budget_percent,
                                {kEntryTrapNs, kReturnTrapNs, "fixed figures of KERNEL-FACTS.md"});
  const double cpu_start = process_cpu_s(req.pid);
  auto read_overhead = [&] {
    probe::Counters c = s.counters();
    analysis::OverheadReading r;
    r.entry_hits = c[LW_CNT_ALLOC_CALLS] + c[LW_CNT_FREE_CALLS];
    r.return_hits = c[LW_CNT_RETURN_CALLS];
    r.bpf_run_ns = s.run_stats().run_time_ns;
    double cpu_now = process_cpu_s(req.pid);
    r.target_cpu_s = cpu_now >= 0 && cpu_start >= 0 ? cpu_now - cpu_start : 0;
    r.elapsed_s = s.elapsed_s();
    return guard.update(r);
  };

  session::DriveOptions d;
  d.interval_s = kReportEveryS;  // history points for the verdicts
  d.duration_s = req.duration_s;
  d.stop = &stop;
  d.guard = [&] {
    read_overhead();
    return guard.stop_reason();
  };
  session::DriveOutcome out = session::drive(s, d, [&] { (void)s.report(false); });
  if (!out.started) return fail("investigation: {}", out.detail);

  // inject: over_budget -> the uprobes cost too much: go on in-process for the rest of the
  // time box instead of ending there.
  if (out.cause == session::StopCause::kGuard && req.inject == "over_budget" && !s.inprocess() &&
      inject()) {
    const double elapsed = s.elapsed_s();
    const double cost = read_overhead().overhead_percent;
    created->reset();  // (drive() has stopped it; its BPF objects go now)
    agent::InvestigationRequest rest = req;
    rest.inject = "never";
    rest.duration_s = std::max(1.0, req.duration_s - elapsed);
    auto second = run(rest, stop);
    if (second) {
      second->report.notes.push_back(fmt::format(
          "investigation: the allocator's uprobes cost {:.1f}% of the target's CPU after {:.1f} s "
          "(budget {}%): the sampling library was injected and the trace went on in-process",
          cost, elapsed, req.overhead_budget_percent));
      second->report.notes.insert(second->report.notes.end(), inject_notes.begin(),
                                  inject_notes.end());
    }
    return second;
  }

  agent::InvestigationResult result;
  result.end = investigation_end(out.cause);
  result.overhead = read_overhead();
  result.report = s.report(true);
  result.report.target.cgroup = req.cgroup;
  if (out.cause == session::StopCause::kGuard) result.report.notes.push_back(out.detail);
  result.report.notes.insert(result.report.notes.end(), inject_notes.begin(), inject_notes.end());
  result.report.notes.push_back(fmt::format(
      "investigation: {} ({}); ended: {}; estimated overhead {:.2f}% of the target's CPU "
      "({} probe hits, {:.0f} ns each)",
      req.reason, req.target, agent::to_string(result.end), result.overhead.overhead_percent,
      result.overhead.probe_hits, result.overhead.per_hit_cost_ns));
  return result;
}

}  // namespace leakwatch::cli
