#include "session/growth_session.h"

#include <unistd.h>

#include <algorithm>

#include "common/clock.h"
#include "common/log.h"
#include "common/procfs.h"
#include "alloc/preload_plan.h"
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

Result<void> GrowthSession::setup() {
  std::string comm = o_.comm;
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

  probe::GrowthProbeConfig pc = o_.probe;
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
  probe_->drain_events([this](const lw_gr_event& e) { tracker_->on_event(e); });
}

void GrowthSession::resolve_new() {
  tracker_->resolve_new([this](uint64_t stack) { return probe_->read_stack(stack); });
}

void GrowthSession::collect() {
  drain();
  if (uint64_t now = monotonic_ns(); now >= next_resolve_ns_) {
    resolve_new();
    next_resolve_ns_ = now + kResolveEveryNs;
  }
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
  snap.read_stack = [this](uint64_t stack) { return probe_->read_stack(stack); };
  snap.comm_of = [](int pid) { return process_comm(pid); };
  report::GrowthReport rep = tracker_->update(snap, elapsed_s());
  rep.final = final_report;
  if (rep.target.comm.empty() && target_pid_ > 0) rep.target.comm = process_comm(target_pid_);
  return rep;
}

}  // namespace leakwatch::session
