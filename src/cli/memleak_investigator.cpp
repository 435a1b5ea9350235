#include "cli/memleak_investigator.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "analysis/sampling.h"
#include "cli/inject_step.h"
#include "cli/inprocess.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/proc_maps.h"
#include "metrics/proc_parse.h"
#include "probe/allocator_plan.h"
#include "probe/memleak_probe.h"
#include "probe/preload_plan.h"
#include "tracker/frame_resolver.h"
#include "tracker/tracker.h"

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

Result<agent::InvestigationResult> MemleakInvestigator::run(const agent::InvestigationRequest& req,
                                                            const std::atomic<bool>& stop) {
  if (!process_exists(req.pid)) return fail("investigation: no such process: {}", req.pid);
  probe::PlanRequest plan_req;
  plan_req.pid = req.pid;
  auto objects = probe::plan_allocator_probes(plan_req);
  if (!objects) return std::unexpected(objects.error());

  probe::MemleakConfig cfg;
  cfg.pid = req.pid;
  cfg.objects = std::move(*objects);
  report::Sampling sampling;
  if (req.sample_rate > 1) sampling = {report::SamplingMode::kCalls, req.sample_rate};
  // inject: always -> the sampling library first (memleak --inject); a process it cannot go
  // into is traced with the uprobes, and the report says why.
  std::vector<std::string> inject_notes;
  auto inject = [&]() {
    auto step = ensure_injected(req.pid, sampling, sampling.mode != report::SamplingMode::kExact, false);
    if (!step) {
      log::warn("investigation of pid {}: {}", req.pid, step.error().message);
      inject_notes.push_back(step.error().message + "; traced with the allocator's uprobes");
      return false;
    }
    inject_notes.insert(inject_notes.end(), step->notes.begin(), step->notes.end());
    return true;
  };
  if (req.inject == "always") (void)inject();
  // A target that runs with the sampling library (started by `leakwatch growth -c
  // --inprocess`, or with LD_PRELOAD by its service manager): its hooks are probed at the
  // rate it samples at, and unsampled allocations cost it no trap.
  std::optional<probe::PreloadStatsReader> preload;
  if (auto loaded = probe::find_loaded_preload(req.pid); loaded && *loaded && (*loaded)->active()) {
    if (auto r = probe::use_preload_hooks(cfg.objects, (*loaded)->path); !r)
      return std::unexpected(r.error());
    cfg.inprocess = true;
    sampling = preload_sampling((*loaded)->stats);
    preload = std::move((*loaded)->reader);
    log::info("investigation of pid {}: in-process ({}), through {}", req.pid,
              describe_sampling(sampling), (*loaded)->mapped_path);
  }
  cfg.sample_mode = probe_sample_mode(sampling.mode);
  cfg.sample_rate = sampling.rate;
  if (cfg.sample_mode == probe::SampleMode::kBytes) cfg.exp_table = analysis::exponential_table();
  // BPF run-time statistics stay enabled while this descriptor is open.
  UniqueFd stats_fd(bpf_enable_stats(BPF_STATS_RUN_TIME));
  auto probe = probe::MemleakProbe::Create(cfg);
  if (!probe) return std::unexpected(probe.error());

  tracker::SymbolizingResolver resolver;
  tracker::TrackerConfig tc;
  tc.sampling = sampling;
  tc.target.pid = req.pid;
  tc.target.comm = req.comm.empty() ? process_comm(req.pid) : req.comm;
  tc.target.cgroup = req.cgroup;
  tc.min_age_ns = 500ull * 1000 * 1000;
  tracker::Tracker tracker(tc, resolver);
  resolver.snapshot(static_cast<uint32_t>(req.pid));

  agent::InvestigationResult result;
  const uint64_t start = monotonic_ns();
  const double cpu_start = process_cpu_s(req.pid);
  double next_report_s = kReportEveryS;

  auto build = [&](bool final_report) {
    tracker::Snapshot snap;
    if (auto a = (*probe)->read_allocs()) snap.allocs = std::move(*a);
    snap.counters = (*probe)->read_counters();
    snap.failed_attaches = (*probe)->failed_attaches();
    snap.read_stack = [&](int32_t id) { return (*probe)->read_stack(id); };
    uint64_t now = monotonic_ns();
    report::Report rep = tracker.update(snap, now, static_cast<double>(now - start) / 1e9);
    rep.final = final_report;
    if (preload) {
      if (auto st = preload->read(req.pid)) {
        rep.lost["preload_set_full"] = st->set_overflow;
        rep.notes.push_back(fmt::format("in-process: {} sampled allocations, {} sampled frees ({})",
                                        st->hook_allocs, st->hook_frees,
                                        describe_sampling(sampling)));
      }
    }
    return rep;
  };

  auto overhead = [&]() {
    agent::InvestigationOverhead o;
    probe::Counters c = (*probe)->read_counters();
    auto rs = (*probe)->run_stats();
    o.probe_hits = c[LW_CNT_ALLOC_CALLS] + c[LW_CNT_FREE_CALLS] + c[LW_CNT_RETURN_CALLS];
    double trap_ns = static_cast<double>(c[LW_CNT_ALLOC_CALLS] + c[LW_CNT_FREE_CALLS]) * kEntryTrapNs +
                     static_cast<double>(c[LW_CNT_RETURN_CALLS]) * kReturnTrapNs;
    double cost_ns = trap_ns + static_cast<double>(rs.run_time_ns);
    o.per_hit_cost_ns = o.probe_hits ? cost_ns / static_cast<double>(o.probe_hits) : 0;
    o.estimated_cost_s = cost_ns / 1e9;
    double cpu_now = process_cpu_s(req.pid);
    o.target_cpu_s = cpu_now >= 0 && cpu_start >= 0 ? cpu_now - cpu_start : 0;
    o.overhead_percent = o.target_cpu_s > 0.05 ? 100.0 * o.estimated_cost_s / o.target_cpu_s : 0;
    return o;
  };

  for (;;) {
    double elapsed = static_cast<double>(monotonic_ns() - start) / 1e9;
    if (stop.load()) {
      result.end = agent::InvestigationEnd::kStopped;
      break;
    }
    if (elapsed >= req.duration_s) {
      result.end = agent::InvestigationEnd::kDuration;
      break;
    }
    if (!process_exists(req.pid)) {
      result.end = agent::InvestigationEnd::kTargetExited;
      break;
    }
    result.overhead = overhead();
    if (result.overhead.overhead_percent > req.overhead_budget_percent) {
      // inject: over_budget -> the uprobes cost too much: go on in-process for the rest of
      // the time box instead of ending.
      if (req.inject == "over_budget" && !cfg.inprocess && inject()) {
        agent::InvestigationRequest rest = req;
        rest.inject = "never";
        rest.duration_s = std::max(1.0, req.duration_s - elapsed);
        probe->reset();  // detach the uprobes first
        auto second = run(rest, stop);
        if (second) {
          second->report.notes.push_back(fmt::format(
              "investigation: the allocator's uprobes cost {:.1f}% of the target's CPU after "
              "{:.1f} s (budget {}%): the sampling library was injected and the trace went on "
              "in-process",
              result.overhead.overhead_percent, elapsed, req.overhead_budget_percent));
          for (auto& n : inject_notes) second->report.notes.push_back(n);
        }
        return second;
      }
      result.end = agent::InvestigationEnd::kOverheadBudget;
      break;
    }
    if (elapsed >= next_report_s) {
      (void)build(false);
      next_report_s += kReportEveryS;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(
        static_cast<int>(std::min(250.0, (req.duration_s - elapsed) * 1000 + 1))));
  }
  result.overhead = overhead();
  result.report = build(true);
  for (auto& n : inject_notes) result.report.notes.push_back(n);
  result.report.notes.push_back(fmt::format(
      "investigation: {} ({}); ended: {}; estimated overhead {:.2f}% of the target's CPU "
      "({} probe hits, {:.0f} ns each)",
      req.reason, req.target, agent::to_string(result.end), result.overhead.overhead_percent,
      result.overhead.probe_hits, result.overhead.per_hit_cost_ns));
  return result;
}

}  // namespace leakwatch::cli
