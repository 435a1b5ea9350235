#include "cli/memleak_cmd.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "analysis/sampling.h"
#include "cli/child_process.h"
#include "cli/inprocess.h"
#include "cli/kmemleak_cmd.h"
#include "cli/output.h"
#include "cli/tracer_setup.h"
#include "common/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/proc_maps.h"
#include "common/units.h"
#include "probe/allocator_plan.h"
#include "probe/frame_pointers.h"
#include "probe/elf_dynamic.h"
#include "probe/memleak_probe.h"
#include "probe/preload_plan.h"
#include "report/render.h"
#include "tracker/dwarf_stacks.h"
#include "tracker/frame_resolver.h"
#include "tracker/hook_table.h"
#include "tracker/tracker.h"

namespace leakwatch::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitTargetGone = 3;

const char* kind_name(uint32_t kind) {
  switch (kind) {
    case LW_FN_MALLOC: return "malloc";
    case LW_FN_CALLOC: return "calloc";
    case LW_FN_REALLOC: return "realloc";
    case LW_FN_REALLOCARRAY: return "reallocarray";
    case LW_FN_POSIX_MEMALIGN: return "posix_memalign";
    case LW_FN_ALIGNED_ALLOC: return "aligned_alloc";
    case LW_FN_VALLOC: return "valloc";
    case LW_FN_NEW: return "operator new";
    case LW_FN_MMAP: return "mmap";
    case LW_FN_MREMAP: return "mremap";
    case LW_FN_FREE: return "free";
    case LW_FN_MUNMAP: return "munmap";
    case LW_FN_HOOK_ALLOC: return "sampled in-process";
    case LW_FN_HOOK_FREE: return "free (in-process)";
    default: return "?";
  }
}

// Everything validated and derived from the flags before anything is attached.
struct Plan {
  report::Sampling sampling;
  probe::SampleMode sample_mode = probe::SampleMode::kExact;
  uint64_t min_size = 0, max_size = UINT64_MAX;
  report::Format format = report::Format::kText;
  probe::AttachMode attach = probe::AttachMode::kAuto;
  tracker::SortBy sort = tracker::SortBy::kSize;
  std::optional<report::Verdict> verdicts_only;
  uint32_t snapshot_size = 8192;
};

Result<Plan> validate(const MemleakOptions& o) {
  Plan p;
  int targets = (o.pid != 0) + !o.command.empty() + !o.cgroup.empty();
  if (o.pid != 0 && !o.command.empty()) return fail("-p and -c cannot be used together");
  if (targets > 1) return fail("--cgroup cannot be combined with -p or -c");
  if (!o.cgroup.empty()) {
    struct stat st;
    if (::stat((o.cgroup + "/cgroup.procs").c_str(), &st) != 0)
      return fail("--cgroup {}: not a cgroup v2 directory (no cgroup.procs)", o.cgroup);
  }
  if (o.pid < 0) return fail("-p: not a valid pid: {}", o.pid);
  if ((o.wa_missing_free || o.percpu) && targets > 0)
    return fail("--wa-missing-free and --percpu apply to kernel mode (no -p, -c or --cgroup)");
  if (o.interval_s <= 0) return fail("interval must be positive, got {}", o.interval_s);
  if (o.count == 0 || o.count < -1) return fail("count must be positive, got {}", o.count);
  if (o.older_ms < 0) return fail("-o: age must be >= 0 ms, got {}", o.older_ms);
  if (o.top <= 0) return fail("-T: must be positive, got {}", o.top);
  if (o.duration_s < 0) return fail("--duration: must be >= 0, got {}", o.duration_s);
  if (o.sample_rate == 0) return fail("-s: sample rate must be >= 1");
  if (!o.sample_bytes.empty() && o.sample_rate > 1)
    return fail("-s and --sample-bytes cannot be used together");
  if (!o.sample_bytes.empty()) {
    auto r = parse_sample_bytes(o.sample_bytes);
    if (!r) return std::unexpected(r.error());
    p.sampling = {report::SamplingMode::kBytes, *r};
    p.sample_mode = probe::SampleMode::kBytes;
  } else if (o.sample_rate > 1) {
    p.sampling = {report::SamplingMode::kCalls, o.sample_rate};
    p.sample_mode = probe::SampleMode::kCalls;
  }
  if (!o.min_size.empty()) {
    auto r = parse_size(o.min_size);
    if (!r) return fail("-z: {}", r.error().message);
    p.min_size = *r;
  }
  if (!o.max_size.empty()) {
    auto r = parse_size(o.max_size);
    if (!r) return fail("-Z: {}", r.error().message);
    p.max_size = *r;
  }
  if (p.min_size > p.max_size) return fail("-z {} is larger than -Z {}", p.min_size, p.max_size);
  auto f = report::parse_format(o.format);
  if (!f) return fail("--format: unknown format '{}' (text, json, pprof, folded)", o.format);
  p.format = *f;
  if (p.format == report::Format::kPprof && o.output.empty() && ::isatty(STDOUT_FILENO))
    return fail("--format pprof is binary: give --output FILE");
  if (o.attach == "session") p.attach = probe::AttachMode::kSession;
  else if (o.attach == "classic") p.attach = probe::AttachMode::kClassic;
  else if (o.attach != "auto") return fail("--attach: unknown mode '{}' (auto, session, classic)", o.attach);
  if (o.sort == "count") p.sort = tracker::SortBy::kCount;
  else if (o.sort != "size") return fail("--sort: unknown key '{}' (size, count)", o.sort);
  if (!o.verdicts_only.empty()) {
    p.verdicts_only = report::verdict_from_string(o.verdicts_only);
    if (!p.verdicts_only) return fail("--verdicts-only: unknown verdict '{}' (leak, cache, transient, unknown)", o.verdicts_only);
  }
  if (o.unwind != "fp" && o.unwind != "dwarf" && o.unwind != "auto")
    return fail("--unwind: unknown mode '{}' (fp, dwarf, auto)", o.unwind);
  {
    auto r = parse_size(o.snapshot_size);
    if (!r) return fail("--snapshot-size: {}", r.error().message);
    if (*r < 512 || *r > LW_SNAPSHOT_MAX)
      return fail("--snapshot-size: must be between 512 and {} bytes", LW_SNAPSHOT_MAX);
    p.snapshot_size = static_cast<uint32_t>(*r);
  }
  if (o.max_allocs == 0 || o.max_stacks == 0) return fail("--max-allocs/--max-stacks must be positive");
  if (o.inprocess == 1) {
    if (o.command.empty() && o.pid == 0)
      return fail("--inprocess needs -c (the sampling library is loaded into a program "
                  "leakwatch starts) or -p of a program that was started with it");
    if (!o.objects.empty() || !o.symbols_prefix.empty())
      return fail("--inprocess wraps the allocator the program binds to: -O and "
                  "--symbols-prefix apply to attach mode only");
  }
  return p;
}

class Session {
 public:
  Session(const MemleakOptions& o, const Plan& p)
      : o_(o), p_(p), sampling_(p.sampling), sample_mode_(p.sample_mode) {}
  ~Session() { stop_hook_drainer(); }
  int run();

 private:
  Result<void> setup();
  void print_probes() const;
  std::vector<probe::ObjectPlan> plan_cgroup_processes();
  report::Report build_report(bool final_report);
  void emit_interval_report();
  int finish();

  const MemleakOptions& o_;
  const Plan& p_;
  // What is sampled: the flags', or (-p in-process) the rate the program's library runs at.
  report::Sampling sampling_;
  probe::SampleMode sample_mode_;
  int target_pid_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::unique_ptr<probe::MemleakProbe> probe_;
  tracker::SymbolizingResolver resolver_;
  std::unique_ptr<tracker::Tracker> tracker_;
  UniqueFd signal_fd_;
  UniqueFd pid_fd_;
  uint64_t start_ns_ = 0;
  int64_t reports_ = 0;
  bool interval_text_ = false;  // print the BCC text report every interval
  std::set<int> cgroup_pids_;   // processes of the --cgroup already planned
  std::string comm_;            // the target's name, read while it runs
  bool dwarf_ = false;          // --unwind dwarf in effect
  // --inprocess: the preload library's counters, read at each report and at the exit.
  std::optional<probe::PreloadStatsReader> preload_stats_reader_;
  std::optional<leakwatch_preload_stats> preload_stats_;
  void read_preload_stats();
  void add_preload_figures(report::Report& rep) const;
  std::string preload_library_;  // set when in-process mode is used
  Result<bool> choose_inprocess(const std::string& executable,
                                const std::vector<probe::ObjectPlan>& plan);
  Result<void> plan_inprocess(probe::MemleakConfig& cfg);
  Result<void> choose_loaded_preload(int pid);
  std::vector<probe::ObjectPlan> command_plan_;  // -c: planned before the fork
  tracker::DwarfStacks dwarf_stacks_;
  void drain_snapshots();
  // In-process with sampling: the hooks' records, kept here (probe::MemleakConfig::hook_ring),
  // drained by a thread of their own so that a long report (the first one symbolizes every
  // stack) never lets the ring fill.  hook_mu_ guards the table and the ring's consumer.
  std::optional<tracker::HookTable> hook_table_;
  std::mutex hook_mu_;
  std::thread hook_drainer_;
  std::atomic<bool> hook_stop_{false};
  void drain_hook_events_locked();
  void start_hook_drainer();
  void stop_hook_drainer();
  bool choose_dwarf(const std::string& executable) const;
};

bool Session::choose_dwarf(const std::string& executable) const {
  if (o_.unwind == "dwarf") return true;
  if (o_.unwind == "fp" || executable.empty()) return false;
  auto check = probe::check_frame_pointers(executable);
  if (!check) {
    log::info("--unwind auto: cannot examine {}: {}; using frame pointers", executable,
              check.error().message);
    return false;
  }
  bool dwarf = !check->keeps_frame_pointers();
  log::info("--unwind auto: {} of {} functions of {} set up a frame pointer: {}",
            check->with_frame, check->functions, executable,
            dwarf ? "DWARF unwinding" : "frame pointers");
  return dwarf;
}

void Session::drain_hook_events_locked() {
  probe_->poll_hook_events([this](const lw_hook_event& e, size_t len) { hook_table_->consume(e, len); });
}

void Session::start_hook_drainer() {
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

void Session::stop_hook_drainer() {
  hook_stop_ = true;
  if (hook_drainer_.joinable()) hook_drainer_.join();
}

void Session::drain_snapshots() {
  if (!dwarf_) return;
  probe_->poll_snapshots(0, [this](const lw_stack_snapshot& s) { dwarf_stacks_.consume(s); });
}

// New processes of the cgroup: their allocator objects (each process is planned once;
// its maps are read now, so it stays symbolized if it exits before the report).
std::vector<probe::ObjectPlan> Session::plan_cgroup_processes() {
  std::vector<probe::ObjectPlan> out;
  std::ifstream in(o_.cgroup + "/cgroup.procs");
  int pid;
  while (in >> pid) {
    if (!cgroup_pids_.insert(pid).second) continue;
    probe::PlanRequest req;
    req.pid = pid;
    req.objects = o_.objects;
    req.symbols_prefix = o_.symbols_prefix;
    auto plans = probe::plan_allocator_probes(req);
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
Result<bool> Session::choose_inprocess(const std::string& executable,
                                       const std::vector<probe::ObjectPlan>& plan) {
  bool asked = o_.inprocess == 1;
  if (!asked && (o_.inprocess == 0 || p_.sample_mode == probe::SampleMode::kExact ||
                 !o_.objects.empty() || !o_.symbols_prefix.empty()))
    return false;
  auto refuse = [&](std::string why) -> Result<bool> {
    if (asked) return fail("--inprocess: {}", why);
    log::info("in-process sampling not used: {}; probing the allocator (attach mode)", why);
    return false;
  };
  auto lib = probe::find_preload_library();
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
      if (!probe::is_mapping_call(site.kind) && !probe::preload_wraps(site.function))
        bypass.insert(site.function);
  if (!bypass.empty()) {
    if (auto imports = probe::read_got_imports(executable)) {
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
Result<void> Session::choose_loaded_preload(int pid) {
  bool asked = o_.inprocess == 1;
  if (o_.inprocess == 0 || !o_.objects.empty() || !o_.symbols_prefix.empty()) return {};
  auto loaded = probe::find_loaded_preload(pid);
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
  bool flags_sample = !o_.sample_bytes.empty() || o_.sample_rate > 1;
  if (flags_sample && !(p_.sampling == theirs)) {
    // The library decides what is sampled: other flags mean probing the allocator.
    if (asked)
      return fail("--inprocess: pid {} samples in-process ({}, set when it started): leave out "
                  "-s/--sample-bytes or give the same, or drop --inprocess to probe its "
                  "allocator with yours", pid, describe_sampling(theirs));
    log::info("in-process sampling not used: pid {} samples {}, -s/--sample-bytes ask for {}; "
              "probing the allocator (attach mode)", pid, describe_sampling(theirs),
              describe_sampling(p_.sampling));
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
Result<void> Session::plan_inprocess(probe::MemleakConfig& cfg) {
  if (auto r = probe::use_preload_hooks(cfg.objects, preload_library_); !r)
    return std::unexpected(r.error());
  cfg.inprocess = true;
  if (preload_stats_reader_) return {};  // -p: the one that found the library
  auto reader = probe::PreloadStatsReader::Create(preload_library_);
  if (!reader) return std::unexpected(reader.error());
  preload_stats_reader_ = std::move(*reader);
  return {};
}

void Session::read_preload_stats() {
  if (!preload_stats_reader_ || target_pid_ <= 0) return;
  if (auto st = preload_stats_reader_->read(target_pid_)) preload_stats_ = *st;
}

void Session::add_preload_figures(report::Report& rep) const {
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
  if (st.flags & LW_PRELOAD_F_SHADOWED)
    rep.notes.push_back(
        "in-process: an allocation function is defined before the sampling library in the "
        "program's search order; calls to it are not sampled (trace without --inprocess)");
  if (st.flags & (LW_PRELOAD_F_DISABLED | LW_PRELOAD_F_NO_SET | LW_PRELOAD_F_CONFIG_ERROR))
    rep.notes.push_back(fmt::format("in-process: the sampling library is degraded (flags 0x{:x})",
                                    st.flags));
}

Result<void> Session::setup() {
  auto signals = signals_to_fd({SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGPIPE});
  if (!signals) return std::unexpected(signals.error());
  signal_fd_ = std::move(*signals);

  probe::PlanRequest req;
  req.objects = o_.objects;
  req.symbols_prefix = o_.symbols_prefix;
  std::vector<probe::ObjectPlan> cgroup_objects;
  if (!o_.cgroup.empty()) {
    target_pid_ = 0;
    cgroup_objects = plan_cgroup_processes();
    if (cgroup_objects.empty()) {
      // Nobody in the cgroup yet: the libraries of this host, as for -c.
      auto own = probe::plan_allocator_probes(req);
      if (!own) return std::unexpected(own.error());
      cgroup_objects = std::move(*own);
    }
  } else if (o_.pid > 0) {
    if (!process_exists(o_.pid)) return fail("no such process: {}", o_.pid);
    target_pid_ = o_.pid;
    req.pid = o_.pid;
    pid_fd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, o_.pid, 0)));
    // Its maps now, while it runs: a process that leaks and exits before the first report
    // is still symbolized (objects mapped later are read when their addresses show up).
    resolver_.snapshot(static_cast<uint32_t>(o_.pid));
    if (auto r = choose_loaded_preload(o_.pid); !r) return std::unexpected(r.error());
  } else {
    auto words = split_command(o_.command);
    if (!words) return std::unexpected(words.error());
    auto path = resolve_executable((*words)[0]);
    if (!path) return std::unexpected(path.error());
    req.command_path = *path;
    // Planned before the fork: whether the command runs in-process decides its environment.
    auto objects = probe::plan_allocator_probes(req);
    if (!objects) return std::unexpected(objects.error());
    auto inprocess = choose_inprocess(*path, *objects);
    if (!inprocess) return std::unexpected(inprocess.error());
    command_plan_ = std::move(*objects);
    std::vector<std::string> env;
    if (*inprocess) env = preload_environment(preload_library_, sampling_);
    auto child = ChildProcess::Spawn(*path, *words, env);
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
    auto objects = probe::plan_allocator_probes(req);
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
  cfg.min_size = p_.min_size;
  cfg.max_size = p_.max_size;
  cfg.sample_mode = sample_mode_;
  cfg.sample_rate = sampling_.rate;
  if (sample_mode_ == probe::SampleMode::kBytes) cfg.exp_table = analysis::exponential_table();
  cfg.max_allocs = o_.max_allocs;
  cfg.max_stacks = o_.max_stacks;
  cfg.trace = o_.trace;
  cfg.combined = o_.combined_only;
  cfg.attach_mode = p_.attach;
  cfg.btf_path = o_.btf;
  {
    // /proc/PID/exe opens the executable even in another mount namespace.
    std::string exe = o_.pid > 0 ? fmt::format("/proc/{}/exe", o_.pid) : req.command_path;
    dwarf_ = choose_dwarf(exe);
  }
  cfg.unwind_dwarf = dwarf_;
  cfg.snapshot_size = p_.snapshot_size;
  // Samples are rare when the library samples: their records go through a ring and are kept
  // here, which costs the program less than BPF's hash maps.  Every allocation (exact mode)
  // stays in the maps, as do DWARF stacks and --combined-only's per-stack totals.
  cfg.hook_ring = cfg.inprocess && !dwarf_ && !o_.combined_only &&
                  sample_mode_ != probe::SampleMode::kExact;
  if (cfg.hook_ring) hook_table_.emplace(o_.max_stacks, o_.max_allocs);
  auto probe = probe::MemleakProbe::Create(cfg);
  if (!probe) {
    if (o_.pid > 0 && !process_exists(o_.pid)) return fail("no such process: {}", o_.pid);
    return std::unexpected(probe.error());
  }
  probe_ = std::move(*probe);

  tracker::TrackerConfig tc;
  tc.sampling = sampling_;
  tc.target.pid = target_pid_;
  tc.target.comm = o_.pid > 0 ? process_comm(o_.pid) : "";
  tc.target.cgroup = o_.cgroup;
  tc.min_age_ns = static_cast<uint64_t>(o_.older_ms * 1e6);
  tc.show_allocs = o_.show_allocs;
  tc.combined_only = o_.combined_only;
  tc.sort_by = p_.sort;
  tracker_ = std::make_unique<tracker::Tracker>(tc, resolver_);
  return {};
}

void Session::print_probes() const {
  log::info("attach mode: {}", probe_->session_mode() ? "uprobe session (unsampled calls skip the return probe)"
                                                      : "classic uprobe + uretprobe");
  for (const auto& a : probe_->attach_results()) {
    if (a.skipped)
      log::info("  {:<38} {:<28} not probed: {}", a.function, a.object, a.error);
    else if (a.ok)
      log::info("  {:<38} {:<28} at 0x{:x}{}", a.function, a.object, a.offset,
                a.function.starts_with("leakwatch_hook") ? " (5-byte NOP: a call, no trap)"
                : a.emulated                             ? " (emulated)"
                                                         : " (single-stepped)");
    else
      log::info("  {:<38} {:<28} FAILED: {}", a.function, a.object, a.error);
  }
}

report::Report Session::build_report(bool final_report) {
  tracker::Snapshot snap;
  if (o_.combined_only) {
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
  if (p_.verdicts_only) {
    std::erase_if(rep.stacks, [&](const report::StackReport& s) { return s.verdict != *p_.verdicts_only; });
  }
  if (o_.verbose) {
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

report::TextOptions text_options(const MemleakOptions& o) {
  report::TextOptions t;
  t.top = o.top;
  t.show_allocs = o.show_allocs;
  t.time_hhmmss = local_hhmmss();
  return t;
}

void Session::emit_interval_report() {
  report::Report rep = build_report(false);
  reports_++;
  if (!interval_text_) return;
  std::string text = report::write_bcc_text(rep, text_options(o_));
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int Session::finish() {
  report::Report rep = build_report(true);
  if (auto w = write_rendered(o_.output, report::render(rep, p_.format, text_options(o_))); !w) {
    log::error("{}", w.error().message);
    return kExitError;
  }
  return kExitOk;
}

int Session::run() {
  if (auto r = setup(); !r) {
    log::error("{}", r.error().message);
    return kExitError;
  }
  if (o_.verbose) print_probes();
  for (const auto& a : probe_->attach_results())
    if (!a.ok && !a.skipped) log::warn("could not attach to {} in {}: {}", a.function, a.object, a.error);

  interval_text_ = o_.output.empty() && p_.format == report::Format::kText;
  if (child_) std::printf("Executing '%s' and tracing the resulting process.\n", o_.command.c_str());
  if (!o_.cgroup.empty())
    std::printf("Attaching to cgroup %s, Ctrl+C to quit.\n", o_.cgroup.c_str());
  else
    std::printf("Attaching to pid %d, Ctrl+C to quit.\n", target_pid_);
  std::fflush(stdout);
  start_ns_ = monotonic_ns();
  start_hook_drainer();
  if (child_) {
    if (auto r = child_->release(); !r) {
      log::error("{}", r.error().message);
      return kExitError;
    }
  }

  const uint64_t interval_ns = static_cast<uint64_t>(o_.interval_s * 1e9);
  const uint64_t end_ns = o_.duration_s > 0 ? start_ns_ + static_cast<uint64_t>(o_.duration_s * 1e9) : 0;
  uint64_t next_report = start_ns_ + interval_ns;
  uint64_t next_cgroup_scan = start_ns_ + 1000000000ull;
  int exit_code = kExitOk;
  std::string stop_reason;

  auto print_event = [&](const lw_event& e) {
    if (e.type == 0)
      std::printf("[%u/%u] alloc exited, size = %llu, result = %llx (%s)\n", e.tgid, e.tid,
                  static_cast<unsigned long long>(e.size), static_cast<unsigned long long>(e.addr),
                  kind_name(e.kind));
    else
      std::printf("[%u/%u] free entered, address = %llx, size = %llu\n", e.tgid, e.tid,
                  static_cast<unsigned long long>(e.addr), static_cast<unsigned long long>(e.size));
  };

  for (;;) {
    uint64_t now = monotonic_ns();
    if (end_ns && now >= end_ns) {
      stop_reason = "duration reached";
      break;
    }
    if (now >= next_report) {
      if (o_.count > 0 && reports_ + 1 >= o_.count) {
        stop_reason = "count reached";
        break;  // the last report is the final one
      }
      emit_interval_report();
      next_report += interval_ns;
      if (next_report <= now) next_report = now + interval_ns;
      continue;
    }
    uint64_t wake = next_report;
    if (end_ns && end_ns < wake) wake = end_ns;
    if (!o_.cgroup.empty()) {
      // New processes in the cgroup may map objects not attached yet.
      if (now >= next_cgroup_scan) {
        auto more = plan_cgroup_processes();
        if (!more.empty()) {
          if (auto r = probe_->attach_objects(more); !r) log::warn("{}", r.error().message);
        }
        next_cgroup_scan = now + 1000000000ull;
      }
      wake = std::min(wake, next_cgroup_scan);
    }
    int timeout_ms = static_cast<int>((wake - now + 999999) / 1000000);
    if (o_.trace) timeout_ms = std::min(timeout_ms, 100);
    if (dwarf_) timeout_ms = std::min(timeout_ms, 10);  // keep the (small) snapshot ring drained

    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {pid_fd_.get(), POLLIN, 0}};
    int r = ::poll(fds, 2, timeout_ms);  // (a negative descriptor is ignored)
    if (o_.trace) probe_->poll_events(0, print_event);
    drain_snapshots();
    if (r < 0 && errno != EINTR) {
      log::error("poll: {}", std::strerror(errno));
      exit_code = kExitError;
      break;
    }
    bool stop = false;
    if (r > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si;
      while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
          stop = true;
          stop_reason = si.ssi_signo == SIGINT ? "interrupted" : "terminated";
        }
      }
    }
    if (child_ && child_->poll([&] {
          resolver_.snapshot(static_cast<uint32_t>(target_pid_));
          comm_ = process_comm(target_pid_);
          read_preload_stats();
        })) {
      int st = child_->exit_status();
      if (WIFSIGNALED(st)) {
        log::error("the command was killed by signal {} ({})", WTERMSIG(st), strsignal(WTERMSIG(st)));
        exit_code = kExitTargetGone;
      } else if (o_.verbose) {
        log::info("the command exited with status {}", WEXITSTATUS(st));
      }
      stop = true;
      stop_reason = "command exited";
    }
    if (pid_fd_.valid() && (fds[1].revents & POLLIN)) {
      log::error("pid {} exited during tracing; final report follows", target_pid_);
      exit_code = kExitTargetGone;
      stop = true;
      stop_reason = "target exited";
    }
    if (stop) break;
  }
  if (o_.trace) probe_->poll_events(0, print_event);
  log::debug("stopping: {}", stop_reason);
  stop_hook_drainer();
  int rc = finish();
  return rc != kExitOk ? rc : exit_code;
}

}  // namespace

CLI::App* add_memleak_subcommand(CLI::App& app, MemleakOptions& o) {
  CLI::App* sub = app.add_subcommand(
      "memleak",
      "Trace outstanding allocations of a process (BCC memleak compatible).\n"
      "Probes malloc/calloc/realloc/free, posix_memalign & co., C++ operator new/delete and\n"
      "mmap/munmap/mremap called by the program, keeps each outstanding allocation by address\n"
      "and prints the stacks holding the most memory every INTERVAL seconds.");
  sub->add_option("interval", o.interval_s, "interval in seconds to print outstanding allocations")
      ->capture_default_str();
  sub->add_option("count", o.count, "number of times to print the report before exiting");
  sub->add_option("-p,--pid", o.pid, "the PID to trace");
  sub->add_option("--cgroup", o.cgroup,
                  "trace every process under this cgroup v2 directory, including processes "
                  "started later (filtered in BPF; every process mapping the probed libraries "
                  "takes the uprobe trap)");
  sub->add_flag("-t,--trace", o.trace, "print trace messages for each alloc/free call");
  sub->add_flag("-a,--show-allocs", o.show_allocs,
                "show allocation addresses and sizes as well as call stacks");
  sub->add_option("-o,--older", o.older_ms,
                  "prune allocations younger than this age in milliseconds")
      ->capture_default_str();
  sub->add_option("-c,--command", o.command,
                  "execute and trace the specified command (it starts once the probes are "
                  "attached and is ended when leakwatch ends)");
  sub->add_flag("--combined-only", o.combined_only,
                "show combined allocation statistics only (per-stack totals kept in BPF)");
  sub->add_flag("--wa-missing-free", o.wa_missing_free,
                "workaround to alleviate misjudgments when free is missing (kernel mode)");
  sub->add_option("-s,--sample-rate", o.sample_rate,
                  "sample every N-th allocation (random 1-in-N draw); printed figures stay "
                  "sampled as in BCC, an estimate line (x N) follows")
      ->capture_default_str();
  sub->add_option("--sample-bytes", o.sample_bytes,
                  "byte sampling: each allocated byte sampled with probability 1/R (e.g. 512K); "
                  "unbiased estimates with 95% intervals");
  sub->add_option("-T,--top", o.top, "display only this many top allocating stacks (by size)")
      ->capture_default_str();
  sub->add_option("-z,--min-size", o.min_size, "capture only allocations larger than this size");
  sub->add_option("-Z,--max-size", o.max_size, "capture only allocations smaller than this size");
  sub->add_option("-O,--obj", o.objects,
                  "attach to allocator functions in the specified object (repeatable)");
  sub->add_flag("--percpu", o.percpu, "trace percpu allocations (kernel mode)");
  sub->add_option("--symbols-prefix", o.symbols_prefix,
                  "memory allocator symbols prefix (e.g. je_)");
  sub->add_option("--sort", o.sort, "order stacks by: size or count")->capture_default_str();
  sub->add_option("--duration", o.duration_s, "stop after this many seconds with a final report");
  sub->add_flag("-v,--verbose", o.verbose,
                "explain what is probed where, and print probe activity with each report");
  sub->add_option("--format", o.format, "final report format: text, json, pprof, folded")
      ->capture_default_str();
  sub->add_option("--output", o.output,
                  "write the final report to FILE (atomically) instead of stdout");
  sub->add_option("--max-allocs", o.max_allocs,
                  "capacity of the outstanding-allocations map (entries)")
      ->capture_default_str();
  sub->add_option("--max-stacks", o.max_stacks, "capacity of the stack map (distinct stacks)")
      ->capture_default_str();
  sub->add_option("--attach", o.attach,
                  "probe style: auto, session (kernel 6.13+) or classic uprobe+uretprobe")
      ->capture_default_str();
  sub->add_option("--unwind", o.unwind,
                  "how stacks are walked: fp (frame pointers, in the kernel), dwarf (a copy of "
                  "the user stack is unwound with the objects' CFI: whole stacks through code "
                  "without frame pointers), auto (dwarf when the program has no frame pointers)")
      ->capture_default_str();
  sub->add_option("--snapshot-size", o.snapshot_size,
                  "bytes of user stack copied per recorded allocation with --unwind dwarf")
      ->capture_default_str();
  sub->add_option("--btf", o.btf, "kernel BTF file to use instead of /sys/kernel/btf/vmlinux");
  // Two flags rather than one with a negation: the setting has a third state (unset).
  auto* no_inprocess = sub->add_flag_callback(
      "--no-inprocess", [&o] { o.inprocess = 0; },
      "probe the allocator even where in-process sampling would be the default (-c with "
      "sampling, or -p of a program running with libleakwatch-preload.so)");
  sub->add_flag_callback("--inprocess", [&o] { o.inprocess = 1; },
                "with -c: preload libleakwatch-preload.so into the command, which samples "
                "allocations in the program (by bytes with --sample-bytes R, 1 call in N with "
                "-s N, else every one) and reaches BPF only for sampled blocks and their frees: "
                "no trap on unsampled calls. The default with -c and -s or --sample-bytes when "
                "the program can load it (dynamically linked glibc program, malloc not its own). "
                "With -p: the program runs with the library already (LD_PRELOAD, or leakwatch "
                "growth -c --inprocess); its hooks are probed at its own rate, the default there")
      ->excludes(no_inprocess);
  sub->add_option("--verdicts-only", o.verdicts_only,
                  "report only stacks with this verdict (leak, cache, transient, unknown)");
  sub->footer(
      "Exit status: 0 when stopped by Ctrl-C/SIGTERM, --duration, count, or when the -c command\n"
      "exits; 1 on errors; 3 when a -p process exits or the -c command is killed by a signal\n"
      "(the final report is printed in every case).\n"
      "Examples:\n"
      "  leakwatch memleak -p $(pidof myservice) 10          report every 10 s\n"
      "  leakwatch memleak -c './server --port 8080' -s 1000 sampled, command started traced\n"
      "  leakwatch memleak -c ./server --sample-bytes 512K  cheapest: sampled in the program\n"
      "  leakwatch memleak -p 1234 --duration 60 --format json --output leaks.json");
  return sub;
}

int run_memleak(const MemleakOptions& opts) {
  auto plan = validate(opts);
  if (!plan) {
    log::error("{}", plan.error().message);
    return kExitError;
  }
  if (auto env = check_tracing_environment(
          "leakwatch memleak needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE)", opts.btf);
      !env) {
    log::error("{}", env.error().message);
    return kExitError;
  }
  prepare_tracer_process(opts.verbose);
  if (opts.pid == 0 && opts.command.empty() && opts.cgroup.empty())
    return run_kernel_memleak(opts, {plan->sampling, plan->sample_mode, plan->min_size, plan->max_size,
                                     plan->format, plan->sort, plan->verdicts_only});
  Session s(opts, *plan);
  return s.run();
}

}  // namespace leakwatch::cli
