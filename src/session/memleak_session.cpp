#include "session/memleak_session.h"

#include <poll.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

#include "analysis/sampling.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/procfs.h"
#include "common/units.h"
#include "alloc/allocator_plan.h"
#include "elf/elf_dynamic.h"
#include "session/inprocess.h"

namespace leakwatch::session {
namespace {

// How often a traced cgroup is scanned for processes that map objects not attached yet.
constexpr uint64_t kCgroupScanNs = 1000000000;
// How often the sampling library's figures are read from the injected program.
constexpr uint64_t kPreloadStatsNs = 1000000000;
// How often the target's maps are compared with the symbolizer's (read again if changed).
constexpr uint64_t kMapsFollowNs = 1000000000;

}  // namespace

probe::AllocSampling alloc_sampling(const AllocationFilter& filter, const report::Sampling& sampling) {
  probe::AllocSampling a;
  a.mode = probe_sample_mode(sampling.mode);
  a.rate = sampling.rate;
  a.min_size = filter.min_size;
  a.max_size = filter.max_size;
  if (a.mode == probe::SampleMode::kBytes) a.exp_table = analysis::exponential_table();
  return a;
}

MemleakSession::MemleakSession(const MemleakSessionOptions& o)
    : o_(o), sampling_(o.filter.sampling), sample_mode_(probe_sample_mode(o.filter.sampling.mode)) {}

MemleakSession::~MemleakSession() { stop_hook_drainer(); }

Result<std::unique_ptr<MemleakSession>> MemleakSession::Create(const MemleakSessionOptions& o) {
  int targets = (o.pid != 0) + !o.command.empty() + !o.cgroup.empty();
  if (targets != 1) return fail("a memleak session traces one of: a pid, a command, a cgroup");
  if (o.pid < 0) return fail("not a valid pid: {}", o.pid);
  std::unique_ptr<MemleakSession> s(new MemleakSession(o));
  if (auto r = s->setup(); !r) return std::unexpected(r.error());
  return s;
}

Result<void> MemleakSession::start() {
  start_ns_ = monotonic_ns();
  next_cgroup_scan_ns_ = start_ns_ + kCgroupScanNs;
  start_hook_drainer();
  if (child_) return child_->release();
  return {};
}

double MemleakSession::elapsed_s() const {
  return start_ns_ ? static_cast<double>(monotonic_ns() - start_ns_) / 1e9 : 0;
}

int MemleakSession::collect_every_ms() const {
  if (dwarf_) return 10;                 // keep the (small) snapshot ring drained
  if (o_.on_trace_event) return 100;     // -t: print calls as they come
  return 1000;                           // the target's maps, a cgroup's new processes, the library's figures
}

void MemleakSession::collect() {
  if (o_.on_trace_event) probe_->poll_events(0, o_.on_trace_event);
  drain_snapshots();
  const uint64_t now = monotonic_ns();
  // The library's figures, while the program can still be read: a final report after it
  // exited keeps the last ones.
  if (preload_stats_reader_ && due(now, next_preload_stats_ns_, kPreloadStatsNs)) read_preload_stats();
  // A plugin loaded and unloaded between two reports: its frames keep their names.
  if (target_pid_ > 0 && due(now, next_maps_follow_ns_, kMapsFollowNs))
    resolver_.follow(static_cast<uint32_t>(target_pid_));
  if (!o_.cgroup.empty() && due(now, next_cgroup_scan_ns_, kCgroupScanNs)) {
    auto more = plan_cgroup_processes();
    if (!more.empty()) {
      if (auto r = probe_->attach_objects(more); !r) log::warn("{}", r.error().message);
    }
  }
}

void MemleakSession::target_exiting() {
  resolver_.snapshot(static_cast<uint32_t>(target_pid_));
  comm_ = process_comm(target_pid_);
  read_preload_stats();
}

void MemleakSession::stop() {
  if (o_.on_trace_event) probe_->poll_events(0, o_.on_trace_event);
  stop_hook_drainer();
}

bool MemleakSession::choose_dwarf(const std::string& executable) const {
  UnwindChoice c = choose_unwind(o_.unwind, {executable});
  log::info("--unwind: {}", c.why);
  return c.dwarf;
}

void MemleakSession::drain_hook_events_locked() {
  probe_->poll_hook_events([this](const lw_hook_event& e, size_t len) { hook_table_->consume(e, len); });
}

void MemleakSession::start_hook_drainer() {
  if (!hook_table_) return;
  hook_drainer_ = std::thread([this] {
    // Woken when the ring is half full (the BPF side asks for it), else every 50 ms.
    pollfd pfd{probe_->hook_events_fd(), POLLIN, 0};
    while (!hook_stop_.load()) {
      ::poll(&pfd, 1, 50);
      std::lock_guard lock(hook_mu_);
      drain_hook_events_locked();
    }
  });
}

void MemleakSession::stop_hook_drainer() {
  hook_stop_ = true;
  if (hook_drainer_.joinable()) hook_drainer_.join();
}

void MemleakSession::drain_snapshots() {
  if (!dwarf_) return;
  probe_->poll_snapshots(0, [this](const lw_stack_snapshot& s) { dwarf_stacks_.consume(s); });
}

// New processes of the cgroup: their allocator objects (each process is planned once;
// its maps are read now, so it stays symbolized if it exits before the report).
std::vector<alloc::ObjectPlan> MemleakSession::plan_cgroup_processes() {
  std::vector<alloc::ObjectPlan> out;
  std::ifstream in(o_.cgroup + "/cgroup.procs");
  int pid;
  while (in >> pid) {
    if (!cgroup_pids_.insert(pid).second) continue;
    alloc::PlanRequest req;
    req.pid = pid;
    req.objects = o_.objects;
    req.symbols_prefix = o_.symbols_prefix;
    auto plans = alloc::plan_allocator_probes(req);
    if (!plans) {
      log::debug("cgroup process {}: {}", pid, plans.error().message);
      continue;
    }
    resolver_.snapshot(static_cast<uint32_t>(pid));
    for (auto& p : *plans) out.push_back(std::move(p));
  }
  return out;
}

// Whether a -c command runs in-process: asked for (--inprocess: every obstacle is an
// error), or by default when sampling by bytes (an obstacle means attach mode, said with -v).
Result<bool> MemleakSession::choose_inprocess(const std::string& executable,
                                       const std::vector<alloc::ObjectPlan>& plan) {
  bool asked = o_.inprocess == InProcess::kRequired;
  if (!asked && (o_.inprocess == InProcess::kNever || o_.filter.sampling.mode == report::SamplingMode::kExact ||
                 !o_.objects.empty() || !o_.symbols_prefix.empty()))
    return false;
  auto refuse = [&](std::string why) -> Result<bool> {
    if (asked) return fail("--inprocess: {}", why);
    log::info("in-process sampling not used: {}; probing the allocator (attach mode)", why);
    return false;
  };
  auto lib = alloc::find_preload_library();
  if (!lib) return refuse(lib.error().message);
  if (auto r = check_preloadable(executable); !r) return refuse(r.error().message);
  for (const auto& obj : plan)
    for (const auto& site : obj.sites)
      if (site.kind == LW_FN_MALLOC && site.skipped_reason.empty() && obj.path == executable)
        return refuse(fmt::format("{} defines malloc itself, so its calls would bypass the "
                                  "sampling library; trace it without --inprocess",
                                  obj.display_path));
  // Calls to an allocator's own API (jemalloc's mallocx/sdallocx, tc_*, mi_*, a prefixed
  // API) pass the library by; a block from mallocx freed with free() would even stay
  // "outstanding".  Programs importing such functions are traced in attach mode.
  std::set<std::string> bypass;
  for (const auto& obj : plan)
    for (const auto& site : obj.sites)
      if (!alloc::is_mapping_call(site.kind) && !alloc::preload_wraps(site.function))
        bypass.insert(site.function);
  if (!bypass.empty()) {
    if (auto imports = elf::read_got_imports(executable)) {
      for (const auto& [slot, name] : *imports)
        if (bypass.contains(name))
          return refuse(fmt::format("{} calls {}, which the sampling library does not wrap",
                                    executable, name));
    }
  }
  preload_library_ = *lib;
  return true;
}

// -p of a program that runs with the sampling library (started by `leakwatch growth -c
// --inprocess`, or by its service manager with LD_PRELOAD): its hooks are probed instead of
// the allocator, at the rate the library was started with, unless --no-inprocess.  Flags
// asking for another sampling are an error: the library, not leakwatch, decides.
Result<void> MemleakSession::choose_loaded_preload(int pid) {
  bool asked = o_.inprocess == InProcess::kRequired;
  if (o_.inprocess == InProcess::kNever || !o_.objects.empty() || !o_.symbols_prefix.empty()) return {};
  auto loaded = alloc::find_loaded_preload(pid);
  if (!loaded) {
    if (asked) return fail("--inprocess: {}", loaded.error().message);
    log::info("in-process sampling not used: {}", loaded.error().message);
    return {};
  }
  if (!*loaded || !(*loaded)->active()) {
    if (asked)
      return fail("--inprocess: pid {} {} (start it with `leakwatch memleak -c` or `leakwatch "
                  "growth -c` and --inprocess, or with LD_PRELOAD={})",
                  pid, *loaded ? "runs with " LEAKWATCH_PRELOAD_LIBRARY " but it is not sampling"
                               : "has not loaded " LEAKWATCH_PRELOAD_LIBRARY,
                  LEAKWATCH_PRELOAD_LIBRARY);
    return {};
  }
  report::Sampling theirs = preload_sampling((*loaded)->stats);
  bool flags_sample = o_.filter.sampling.mode != report::SamplingMode::kExact;
  if (flags_sample && !(o_.filter.sampling == theirs)) {
    // The library decides what is sampled: other flags mean probing the allocator.
    if (asked)
      return fail("--inprocess: pid {} samples in-process ({}, set when it started): leave out "
                  "-s/--sample-bytes or give the same, or drop --inprocess to probe its "
                  "allocator with yours", pid, describe_sampling(theirs));
    log::info("in-process sampling not used: pid {} samples {}, -s/--sample-bytes ask for {}; "
              "probing the allocator (attach mode)", pid, describe_sampling(theirs),
              describe_sampling(o_.filter.sampling));
    return {};
  }
  sampling_ = theirs;
  sample_mode_ = probe_sample_mode(theirs.mode);
  preload_library_ = (*loaded)->path;
  preload_stats_reader_ = std::move((*loaded)->reader);
  log::info("in-process: pid {} runs with {} ({}): probing its hooks", pid,
            (*loaded)->mapped_path, describe_sampling(theirs));
  return {};
}

// --inprocess: the allocation functions are sampled by the preload library, which calls its
// hooks for sampled blocks only: probe the hooks instead of them.  mmap/mremap/munmap
// called by the program itself are still probed where they bind (the library does not
// wrap them), sampled the same way in BPF.
Result<void> MemleakSession::plan_inprocess(probe::MemleakConfig& cfg) {
  if (auto r = alloc::use_preload_hooks(cfg.objects, preload_library_); !r)
    return std::unexpected(r.error());
  cfg.inprocess = true;
  if (preload_stats_reader_) return {};  // -p: the one that found the library
  auto reader = alloc::PreloadStatsReader::Create(preload_library_);
  if (!reader) return std::unexpected(reader.error());
  preload_stats_reader_ = std::move(*reader);
  return {};
}

void MemleakSession::read_preload_stats() {
  if (!preload_stats_reader_ || target_pid_ <= 0) return;
  if (auto st = preload_stats_reader_->read(target_pid_)) preload_stats_ = *st;
}

void MemleakSession::add_preload_figures(report::Report& rep) const {
  if (!preload_stats_) {
    rep.notes.push_back(
        "in-process: the sampling library has not reported from the program (not started yet, "
        "or it did not load " LEAKWATCH_PRELOAD_LIBRARY ": setuid, static, or a cleared "
        "LD_PRELOAD): nothing is being sampled");
    return;
  }
  const leakwatch_preload_stats& st = *preload_stats_;
  // A block sampled while the library's set was full is never reported freed.
  rep.lost["preload_set_full"] = st.set_overflow;
  rep.lost["preload_bootstrap_failures"] = st.bootstrap_failures;
  rep.notes.push_back(fmt::format(
      "in-process: {} sampled allocations, {} sampled frees ({}); {} allocations before the "
      "library was initialised were not sampled",
      st.hook_allocs, st.hook_frees,
      describe_sampling(preload_sampling(st)),
      st.unsampled_early));
  if (st.flags & LW_PRELOAD_F_INJECTED)
    rep.notes.push_back(fmt::format(
        "in-process (injected): allocations since injection only; blocks allocated before it "
        "pass through unseen; {} GOT slots lead to the library",
        st.got_slots));
  if (st.flags & LW_PRELOAD_F_SHADOWED)
    rep.notes.push_back(
        "in-process: an allocation function is defined before the sampling library in the "
        "program's search order; calls to it are not sampled (trace without --inprocess)");
  if (st.flags & (LW_PRELOAD_F_DISABLED | LW_PRELOAD_F_NO_SET | LW_PRELOAD_F_CONFIG_ERROR))
    rep.notes.push_back(fmt::format("in-process: the sampling library is degraded (flags 0x{:x})",
                                    st.flags));
}

Result<void> MemleakSession::setup() {
  alloc::PlanRequest req;
  req.objects = o_.objects;
  req.symbols_prefix = o_.symbols_prefix;
  std::vector<alloc::ObjectPlan> cgroup_objects;
  if (!o_.cgroup.empty()) {
    target_pid_ = 0;
    cgroup_objects = plan_cgroup_processes();
    if (cgroup_objects.empty()) {
      // Nobody in the cgroup yet: the libraries of this host, as for -c.
      auto own = alloc::plan_allocator_probes(req);
      if (!own) return std::unexpected(own.error());
      cgroup_objects = std::move(*own);
    }
  } else if (o_.pid > 0) {
    if (!process_exists(o_.pid)) return fail("no such process: {}", o_.pid);
    target_pid_ = o_.pid;
    req.pid = o_.pid;
    if (auto r = choose_loaded_preload(o_.pid); !r) return std::unexpected(r.error());
  } else {
    if (o_.command.empty()) return fail("-c: empty command");
    auto path = resolve_executable(o_.command[0]);
    if (!path) return std::unexpected(path.error());
    req.command_path = *path;
    // Planned before the fork: whether the command runs in-process decides its environment.
    auto objects = alloc::plan_allocator_probes(req);
    if (!objects) return std::unexpected(objects.error());
    auto inprocess = choose_inprocess(*path, *objects);
    if (!inprocess) return std::unexpected(inprocess.error());
    command_plan_ = std::move(*objects);
    std::vector<std::string> env;
    if (*inprocess) env = preload_environment(preload_library_, sampling_);
    auto child = ChildProcess::Spawn(*path, o_.command, env);
    if (!child) return std::unexpected(child.error());
    child_ = std::move(*child);
    target_pid_ = child_->pid();
  }

  probe::MemleakConfig cfg;
  if (child_) {
    cfg.objects = std::move(command_plan_);
    if (!preload_library_.empty()) {
      if (auto r = plan_inprocess(cfg); !r) return std::unexpected(r.error());
    }
  } else if (o_.cgroup.empty()) {
    auto objects = alloc::plan_allocator_probes(req);
    if (!objects) return std::unexpected(objects.error());
    cfg.objects = std::move(*objects);
    if (!preload_library_.empty()) {
      if (auto r = plan_inprocess(cfg); !r) return std::unexpected(r.error());
    }
  } else {
    cfg.objects = std::move(cgroup_objects);
    cfg.cgroup_path = o_.cgroup;
  }
  cfg.pid = target_pid_;
  cfg.sampling = alloc_sampling(o_.filter, sampling_);
  cfg.max_allocs = o_.filter.max_allocs;
  cfg.max_stacks = o_.filter.max_stacks;
  cfg.trace = static_cast<bool>(o_.on_trace_event);
  cfg.combined = o_.filter.combined_only;
  cfg.attach_mode = o_.attach;
  cfg.btf_path = o_.filter.btf;
  {
    // /proc/PID/exe opens the executable even in another mount namespace.
    std::string exe = o_.pid > 0 ? fmt::format("/proc/{}/exe", o_.pid) : req.command_path;
    dwarf_ = choose_dwarf(exe);
  }
  cfg.unwind_dwarf = dwarf_;
  cfg.snapshot_size = o_.snapshot_size;
  if (const char* pause = std::getenv("LEAKWATCH_TEST_ATTACH_PAUSE_US"))
    cfg.attach_pause_us = static_cast<uint32_t>(std::strtoul(pause, nullptr, 10));
  // Samples are rare when the library samples: their records go through a ring and are kept
  // here, which costs the program less than BPF's hash maps.  Every allocation (exact mode)
  // stays in the maps, as do DWARF stacks and --combined-only's per-stack totals.
  cfg.hook_ring = cfg.inprocess && !dwarf_ && !o_.filter.combined_only &&
                  sample_mode_ != probe::SampleMode::kExact;
  if (cfg.hook_ring) hook_table_.emplace(o_.filter.max_stacks, o_.filter.max_allocs);
  auto probe = probe::MemleakProbe::Create(cfg);
  if (!probe) {
    if (o_.pid > 0 && !process_exists(o_.pid)) return fail("no such process: {}", o_.pid);
    return std::unexpected(probe.error());
  }
  probe_ = std::move(*probe);
  // A running target's maps now: if it exits before the first report, its stacks are
  // resolved with them.  (A -c command is read when it is about to exit.)
  if (o_.pid > 0) resolver_.snapshot(static_cast<uint32_t>(o_.pid));

  tracker::TrackerConfig tc;
  tc.sampling = sampling_;
  tc.target.pid = target_pid_;
  tc.target.comm = !o_.comm.empty() ? o_.comm : o_.pid > 0 ? process_comm(o_.pid) : "";
  tc.target.cgroup = o_.cgroup;
  tc.min_age_ns = static_cast<uint64_t>(o_.reports.older_ms * 1e6);
  tc.show_allocs = o_.reports.show_allocs;
  tc.combined_only = o_.filter.combined_only;
  tc.sort_by = o_.reports.sort;
  tracker_ = std::make_unique<tracker::Tracker>(tc, resolver_);
  return {};
}

report::Report MemleakSession::report(bool final_report) {
  tracker::Snapshot snap;
  if (o_.filter.combined_only) {
    auto c = probe_->read_combined();
    if (c) snap.combined = std::move(*c);
    else log::warn("{}", c.error().message);
  } else {
    auto a = probe_->read_allocs();
    if (a) snap.allocs = std::move(*a);
    else log::warn("{}", a.error().message);
  }
  snap.counters = probe_->read_counters();
  snap.failed_attaches = probe_->failed_attaches();
  if (final_report && child_ && child_->exited() && !o_.reports.older_after_exit)
    snap.min_age_ns = 0;
  snap.read_stack = [this](int32_t id) { return probe_->read_stack(id); };
  if (hook_table_) {
    std::lock_guard lock(hook_mu_);
    drain_hook_events_locked();
    hook_table_->append_allocs(snap.allocs, tracker::Tracker::kUserStackBit);
    snap.read_user_stack = [this](uint32_t, uint32_t id) {
      std::lock_guard stack_lock(hook_mu_);
      return std::make_pair(hook_table_->stack(id), false);
    };
  }
  if (dwarf_) {
    drain_snapshots();
    snap.dwarf_stack_of = [this](uint32_t tgid, uint64_t addr) { return dwarf_stacks_.stack_of(tgid, addr); };
    snap.read_user_stack = [this](uint32_t tgid, uint32_t id) {
      auto st = dwarf_stacks_.stack(tgid, id);
      return std::make_pair(std::move(st.frames), st.truncated);
    };
  }
  // Blocks recorded while the probes were being attached may have been released by a
  // function not probed yet: they are not reported (they would be false leaks).
  const uint64_t live_since = probe_->live_since_ns();
  size_t before_live = std::erase_if(snap.allocs, [&](const probe::OutstandingAlloc& a) {
    return a.timestamp_ns < live_since;
  });
  if (target_pid_ > 0) snap.rss_bytes = process_rss_bytes(target_pid_);  // the timeline's RSS
  uint64_t now = monotonic_ns();
  report::Report rep = tracker_->update(snap, now, static_cast<double>(now - start_ns_) / 1e9);
  rep.final = final_report;
  if (dwarf_) {
    std::vector<std::pair<uint32_t, uint64_t>> live;
    live.reserve(snap.allocs.size());
    for (const auto& a : snap.allocs) live.emplace_back(a.tgid, a.address);
    dwarf_stacks_.retain(live);
    const auto& ds = dwarf_stacks_.stats();
    rep.lost["snapshots_lost"] = snap.counters[LW_CNT_SNAPSHOTS_LOST];
    rep.lost["unwind_failed"] = ds.failed;
    rep.notes.push_back(fmt::format(
        "dwarf unwinding: {} snapshots ({} of stack copied), {} truncated, {:.1f} ms unwinding",
        ds.snapshots, format_size(static_cast<double>(snap.counters[LW_CNT_SNAPSHOT_BYTES])),
        ds.truncated, static_cast<double>(ds.unwind_ns) / 1e6));
  }
  if (hook_table_) {
    std::lock_guard lock(hook_mu_);
    rep.lost["stack_lost"] += hook_table_->stats().stacks_full;
    rep.lost["allocs_map_full"] += hook_table_->stats().table_full;
    rep.lost["hook_events_lost"] = snap.counters[LW_CNT_HOOK_EVENTS_LOST];
  }
  if (preload_stats_reader_) {
    read_preload_stats();
    add_preload_figures(rep);
  }
  if (comm_.empty() && target_pid_ > 0) comm_ = process_comm(target_pid_);
  if (rep.target.comm.empty()) rep.target.comm = comm_;
  for (const auto& a : probe_->attach_results())
    if (!a.ok && !a.skipped)
      rep.notes.push_back(fmt::format("attach failed: {} in {}: {}", a.function, a.object, a.error));
  if (before_live > 0)
    rep.notes.push_back(fmt::format(
        "{} allocations made while the probes were being attached are not reported (their "
        "release could have gone unseen)", before_live));
  if (o_.reports.verdicts_only) {
    std::erase_if(rep.stacks, [&](const report::StackReport& s) { return s.verdict != *o_.reports.verdicts_only; });
  }
  if (o_.reports.probe_activity) {
    const auto& c = snap.counters;
    rep.notes.push_back(fmt::format(
        "probe hits: alloc {} free {} return {}; sampled {} recorded {} freed {} nested {} "
        "allocator-internal maps {} failed allocations {}",
        c[LW_CNT_ALLOC_CALLS], c[LW_CNT_FREE_CALLS], c[LW_CNT_RETURN_CALLS], c[LW_CNT_SAMPLED],
        c[LW_CNT_RECORDED], c[LW_CNT_FREED], c[LW_CNT_NESTED], c[LW_CNT_INTERNAL_MAP],
        c[LW_CNT_FAILED_ALLOCS]));
  }
  return rep;
}

}  // namespace leakwatch::session
