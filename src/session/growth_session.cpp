#include "session/growth_session.h"

#include <unistd.h>

#include <algorithm>

#include "common/clock.h"
#include "common/log.h"
#include "common/procfs.h"
#include "alloc/allocator_plan.h"
#include "alloc/preload_plan.h"
#include "common/units.h"
#include "session/inprocess.h"

namespace leakwatch::session {
namespace {

constexpr uint64_t kResolveEveryNs = 1000000000;

}  // namespace

Result<std::unique_ptr<GrowthSession>> GrowthSession::Create(const GrowthSessionOptions& o) {
  int targets = (o.pid != 0) + !o.command.empty() + !o.cgroup.empty();
  if (targets != 1) return fail("a growth session traces one of: a pid, a command, a cgroup");
  if (o.pid < 0) return fail("not a valid pid: {}", o.pid);
  std::unique_ptr<GrowthSession> s(new GrowthSession(o));
  if (auto r = s->setup(); !r) return std::unexpected(r.error());
  return s;
}

// The objects whose frame pointers decide --unwind auto: the program, and the objects its
// allocation functions bind to (libc's malloc, libstdc++'s operator new): a brk or a
// first-touch fault inside them is where a growth stack starts.
std::vector<std::string> GrowthSession::unwind_objects(const std::string& executable) const {
  std::vector<std::string> out;
  if (!executable.empty()) out.push_back(executable);
  alloc::PlanRequest req;
  req.pid = o_.pid > 0 ? o_.pid : 0;
  if (!o_.command.empty() && o_.pid <= 0) req.command_path = executable;
  auto found = alloc::discover_allocators(req);
  if (!found) {
    log::info("--unwind auto: allocator libraries not found: {}", found.error().message);
    return out;
  }
  for (const auto& obj : found->objects) {
    bool binds = false;
    for (const auto& site : obj.sites) binds |= site.skipped_reason.empty();
    if (binds && std::find(out.begin(), out.end(), obj.path) == out.end()) out.push_back(obj.path);
  }
  return out;
}

Result<void> GrowthSession::setup() {
  std::string comm = o_.comm;
  std::string child_path;
  if (o_.pid > 0) {
    if (!process_exists(o_.pid)) return fail("no such process: {}", o_.pid);
    target_pid_ = o_.pid;
    if (comm.empty()) comm = process_comm(o_.pid);
  } else if (!o_.command.empty()) {
    auto path = resolve_executable(o_.command[0]);
    if (!path) return std::unexpected(path.error());
    std::vector<std::string> env;
    if (o_.preload) {
      auto lib = alloc::find_preload_library();
      if (!lib) return fail("--inprocess: {}", lib.error().message);
      if (auto r = check_preloadable(*path); !r) return fail("--inprocess: {}", r.error().message);
      env = preload_environment(*lib, *o_.preload);
      log::info("--inprocess: {} runs with {} ({}); `leakwatch memleak -p` can trace its "
                "allocations in-process", *path, *lib, describe_sampling(*o_.preload));
    }
    child_path = *path;
    auto child = ChildProcess::Spawn(*path, o_.command, env);
    if (!child) return std::unexpected(child.error());
    child_ = std::move(*child);
    target_pid_ = child_->pid();
    if (comm.empty()) {
      // What the kernel will call it after exec (comm is the basename, 15 characters).
      std::string base = o_.command[0];
      if (auto slash = base.rfind('/'); slash != std::string::npos) base = base.substr(slash + 1);
      comm = base.substr(0, 15);
    }
  }

  std::string executable;
  if (o_.pid > 0) executable = fmt::format("/proc/{}/exe", o_.pid);
  else if (child_) executable = child_path;
  unwind_ = choose_unwind(o_.unwind, o_.unwind == Unwind::kAuto ? unwind_objects(executable)
                                                                : std::vector<std::string>{});
  dwarf_ = unwind_.dwarf;
  log::info("--unwind: {}", unwind_.why);

  probe::GrowthProbeConfig pc = o_.probe;
  pc.unwind_dwarf = dwarf_;
  pc.snapshot_size = o_.snapshot_size;
  pc.pid = target_pid_;
  pc.wait_for_exec = child_ != nullptr;
  pc.cgroup_path = o_.cgroup;
  auto probe = probe::GrowthProbe::Create(pc);
  if (!probe) {
    if (o_.pid > 0 && !process_exists(o_.pid)) return fail("no such process: {}", o_.pid);
    return std::unexpected(probe.error());
  }
  probe_ = std::move(*probe);

  tracker::GrowthTrackerConfig tc;
  tc.target.pid = target_pid_;
  tc.target.comm = comm;
  tc.target.cgroup = o_.cgroup;
  tc.sample_period = std::max<uint32_t>(pc.sample_period, 1);
  tc.page_size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  tc.walker = pc.walker;
  tc.dwarf = dwarf_;
  tc.keep_exited = o_.cgroup.empty();
  tc.read_maps = [](uint32_t tgid) { return read_proc_maps(static_cast<int>(tgid)); };
  tracker_ = std::make_unique<tracker::GrowthTracker>(tc, resolver_);
  // A running target's maps now: if it exits before the first symbolization, its stacks
  // are resolved with them.  (A -c command is read when it is about to exit.)
  if (o_.pid > 0) resolver_.snapshot(static_cast<uint32_t>(o_.pid));
  return {};
}

Result<void> GrowthSession::start() {
  start_ns_ = monotonic_ns();
  next_resolve_ns_ = start_ns_ + kResolveEveryNs;
  if (child_) return child_->release();
  return {};
}

double GrowthSession::elapsed_s() const {
  return start_ns_ ? static_cast<double>(monotonic_ns() - start_ns_) / 1e9 : 0;
}

void GrowthSession::drain() {
  probe_->drain_events([this](const lw_gr_event& e, const lw_stack_snapshot* snap) {
    if (e.stack != LW_GR_SNAPSHOT_STACK) {
      tracker_->on_event(e);
      // The next snapshot of the process is another program's: a new unwinder reads its maps.
      if (e.type == LW_GR_EV_EXEC) dwarf_stacks_.forget(e.tgid);
      return;
    }
    lw_gr_event unwound = e;
    unwound.stack = LW_GR_NO_STACK;  // counted in the unwinding figures (failed)
    if (snap) {
      if (auto st = dwarf_stacks_.unwind(*snap)) unwound.stack = dwarf_table_.intern(st->frames, st->truncated);
    }
    tracker_->on_event(unwound);
  });
}

std::vector<uint64_t> GrowthSession::read_stack(uint64_t stack) const {
  if (!dwarf_) return probe_->read_stack(stack);
  if (stack > UINT32_MAX) return {};
  const unwind::StackEntry* e = dwarf_table_.get(static_cast<uint32_t>(stack));
  return e ? e->frames : std::vector<uint64_t>{};
}

void GrowthSession::resolve_new() {
  tracker_->resolve_new([this](uint64_t stack) { return read_stack(stack); });
}

void GrowthSession::add_unwind_figures(report::GrowthReport& rep) const {
  report::GrowthUnwind& u = rep.unwind;
  u.mode = dwarf_ ? "dwarf" : "fp";
  u.decision = unwind_.why;
  rep.lost["unwind_failed"] = 0;
  if (!dwarf_) return;
  const auto& st = dwarf_stacks_.stats();
  u.snapshot_size = o_.snapshot_size;
  u.snapshots = probe_->read_counters()[LW_GR_CNT_SNAPSHOTS];
  u.snapshot_bytes = probe_->read_counters()[LW_GR_CNT_SNAPSHOT_BYTES];
  u.unwound = st.unwound;
  u.truncated = st.truncated;
  u.failed = st.failed;
  u.unwind_ms = static_cast<double>(st.unwind_ns) / 1e6;
  rep.lost["unwind_failed"] = st.failed;
  rep.notes.push_back(fmt::format(
      "dwarf unwinding: {} snapshots ({} of stack copied, at most {} each), {} truncated, "
      "{:.1f} ms unwinding",
      u.snapshots, format_size(static_cast<double>(u.snapshot_bytes)),
      format_size(static_cast<double>(u.snapshot_size)), u.truncated, u.unwind_ms));
}

void GrowthSession::collect() {
  drain();
  if (due(monotonic_ns(), next_resolve_ns_, kResolveEveryNs)) resolve_new();
}

void GrowthSession::target_exiting() {
  // Classify what is waiting and let the symbolizer read the maps while they exist.
  drain();
  resolver_.snapshot(static_cast<uint32_t>(target_pid_));
  resolve_new();
}

report::GrowthReport GrowthSession::report(bool final_report) {
  drain();
  tracker::GrowthSnapshot snap;
  snap.rss = probe_->read_rss();
  snap.counters = probe_->read_counters();
  snap.read_stack = [this](uint64_t stack) { return read_stack(stack); };
  snap.comm_of = [](int pid) { return process_comm(pid); };
  report::GrowthReport rep = tracker_->update(snap, elapsed_s());
  rep.final = final_report;
  add_unwind_figures(rep);
  if (rep.target.comm.empty() && target_pid_ > 0) rep.target.comm = process_comm(target_pid_);
  return rep;
}

}  // namespace leakwatch::session
