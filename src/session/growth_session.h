// Where resident memory grows (what `leakwatch growth` and the agent's growth step run):
// the growth probe's tracepoints (page faults, mmap/munmap/mremap/brk, rss_stat) fed to a
// GrowthTracker, symbolized while the processes live.
//
// Thread-safety: one driving thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "probe/growth_probe.h"
#include "report/growth_report.h"
#include "report/model.h"
#include "session/child_process.h"
#include "session/trace_session.h"
#include "tracker/frame_resolver.h"
#include "tracker/growth_tracker.h"

namespace leakwatch::session {

struct GrowthSessionOptions {
  // The target: exactly one of pid, command, cgroup.
  int pid = 0;
  std::vector<std::string> command;   // argv of a command to start traced
  std::string cgroup;                 // a cgroup v2 directory
  std::string comm;                   // the target's name when the caller knows it
  // -c --inprocess: the command runs with the sampling library at this rate, so that
  // `leakwatch memleak -p` can trace its allocations without traps.
  std::optional<report::Sampling> preload;
  // Walker, fault sampling, rss_stat, map sizes, BTF (pid, cgroup and the exec wait are
  // set from the target).
  probe::GrowthProbeConfig probe;
};

class GrowthSession : public TraceSession {
 public:
  // Plans, starts a command held before exec, loads and attaches.
  [[nodiscard]] static Result<std::unique_ptr<GrowthSession>> Create(const GrowthSessionOptions& o);

  Result<void> start() override;
  // Drains the event ring (written without wakeups: it holds a few seconds of a fault
  // storm) and symbolizes new stacks about once a second, while their processes live.
  void collect() override;
  int collect_every_ms() const override { return 100; }
  void target_exiting() override;
  int target_pid() const override { return target_pid_; }
  ChildProcess* child() override { return child_.get(); }

  // Drains the events, reads the maps and builds a report.
  report::GrowthReport report(bool final_report);
  double elapsed_s() const;
  const probe::GrowthProbe& probe() const { return *probe_; }

 private:
  explicit GrowthSession(const GrowthSessionOptions& o) : o_(o) {}
  Result<void> setup();
  void drain();
  void resolve_new();

  GrowthSessionOptions o_;
  int target_pid_ = 0;
  std::unique_ptr<ChildProcess> child_;
  tracker::SymbolizingResolver resolver_;
  std::unique_ptr<probe::GrowthProbe> probe_;
  std::unique_ptr<tracker::GrowthTracker> tracker_;
  uint64_t start_ns_ = 0;
  uint64_t next_resolve_ns_ = 0;
};

}  // namespace leakwatch::session
