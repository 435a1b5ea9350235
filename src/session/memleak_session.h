// The allocation trace of user-space processes (what `leakwatch memleak -p/-c/--cgroup`
// and the agent's investigations run): outstanding allocations by stack, from uprobes on
// the allocator or from the in-process sampling library's hooks.
//
// Create() decides everything before the first probe is live:
//   target       -p PID, -c COMMAND (forked and held before exec), or --cgroup DIR
//   objects      the allocator functions each mapped object exports (alloc/allocator_plan.h)
//   in-process   a -c command sampled by libleakwatch-preload.so (when sampling and the
//                program can load it), or a -p program already running with it: its hooks
//                are probed instead of the allocator, and unsampled calls cost no trap
//   unwinding    frame pointers in BPF, or stack snapshots unwound with the CFI (auto: by
//                whether the program's code keeps frame pointers)
// then loads and attaches (probe/memleak_probe.h).  collect() drains the DWARF snapshot
// ring, the -t event ring and follows the cgroup's new processes; report() snapshots the
// maps into a report::Report through the Tracker.
//
// Thread-safety: one driving thread.  In-process with sampling, a helper thread drains the
// hooks' ring (it would otherwise fill during a long first report); stop() ends it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bpf/preload_abi.h"
#include "probe/memleak_probe.h"
#include "alloc/preload_plan.h"
#include "report/model.h"
#include "session/child_process.h"
#include "session/trace_session.h"
#include "session/unwind_choice.h"
#include "tracker/dwarf_stacks.h"
#include "tracker/frame_resolver.h"
#include "tracker/hook_table.h"
#include "tracker/tracker.h"

namespace leakwatch::session {

// In-process sampling: where possible (kDefault), required (kRequired: every obstacle is
// an error), or never (kNever: probe the allocator).
enum class InProcess { kDefault, kRequired, kNever };

// What allocations are recorded, and the room for them (user and kernel traces alike).
struct AllocationFilter {
  report::Sampling sampling;          // exact, 1 in N calls, or by bytes
  uint64_t min_size = 0;              // -z
  uint64_t max_size = UINT64_MAX;     // -Z
  uint32_t max_allocs = 1000000;      // outstanding allocations kept
  uint32_t max_stacks = 16384;        // distinct stacks kept
  bool combined_only = false;         // --combined-only: per-stack totals kept in BPF
  std::string btf;                    // --btf: kernel BTF file
};

// What the reports hold (user and kernel traces alike).
struct StackReportOptions {
  double older_ms = 500;              // -o: younger allocations are not reported
  // A -c command that has exited holds nothing "in flight" any more: its final report keeps
  // every outstanding allocation unless -o was asked for explicitly (then true).
  bool older_after_exit = false;
  bool show_allocs = false;           // -a
  tracker::SortBy sort = tracker::SortBy::kSize;
  std::optional<report::Verdict> verdicts_only;
  bool probe_activity = false;        // -v: probe hit counters as a note of each report
};

// The probe's form of a filter and the sampling in effect.
probe::AllocSampling alloc_sampling(const AllocationFilter& filter, const report::Sampling& sampling);

struct MemleakSessionOptions {
  // The target: exactly one of pid, command, cgroup.
  int pid = 0;
  std::vector<std::string> command;   // argv of a command to start traced
  std::string cgroup;                 // a cgroup v2 directory
  std::string comm;                   // the target's name when the caller knows it

  // filter.sampling is what the caller asks for.  A -p program sampling in-process at
  // another rate is then traced in attach mode (its library decides what it samples).
  AllocationFilter filter;
  StackReportOptions reports;
  probe::AttachMode attach = probe::AttachMode::kAuto;
  Unwind unwind = Unwind::kAuto;
  uint32_t snapshot_size = 8192;      // bytes of user stack per DWARF snapshot
  InProcess inprocess = InProcess::kDefault;
  std::vector<std::string> objects;   // -O: only these objects
  std::string symbols_prefix;         // --symbols-prefix (e.g. je_)

  // -t: every traced call, as it happens (called from collect()).
  std::function<void(const lw_event&)> on_trace_event;
};

class MemleakSession : public TraceSession {
 public:
  [[nodiscard]] static Result<std::unique_ptr<MemleakSession>> Create(
      const MemleakSessionOptions& options);
  ~MemleakSession() override;

  Result<void> start() override;
  void collect() override;
  int collect_every_ms() const override;
  void target_exiting() override;
  void stop() override;
  int target_pid() const override { return target_pid_; }
  ChildProcess* child() override { return child_.get(); }

  // A snapshot report (final: the last one of the session).
  report::Report report(bool final_report);

  // How it is traced.
  const report::Sampling& sampling() const { return sampling_; }
  bool inprocess() const { return !preload_library_.empty(); }
  bool dwarf_unwinding() const { return dwarf_; }
  bool session_mode() const { return probe_->session_mode(); }
  const std::vector<probe::AttachResult>& attach_results() const { return probe_->attach_results(); }
  // Probe hits so far, and the BPF programs' run time (kernel.bpf_stats_enabled).
  probe::Counters counters() const { return probe_->read_counters(); }
  probe::MemleakProbe::RunStats run_stats() const { return probe_->run_stats(); }
  double elapsed_s() const;

 private:
  explicit MemleakSession(const MemleakSessionOptions& o);
  Result<void> setup();
  std::vector<alloc::ObjectPlan> plan_cgroup_processes();
  Result<bool> choose_inprocess(const std::string& executable,
                                const std::vector<alloc::ObjectPlan>& plan);
  Result<void> choose_loaded_preload(int pid);
  Result<void> plan_inprocess(probe::MemleakConfig& cfg);
  bool choose_dwarf(const std::string& executable) const;
  void read_preload_stats();
  void add_preload_figures(report::Report& rep) const;
  void drain_snapshots();
  void drain_hook_events_locked();
  void start_hook_drainer();
  void stop_hook_drainer();

  MemleakSessionOptions o_;
  // What is sampled: the options', or (-p in-process) the rate the program's library runs at.
  report::Sampling sampling_;
  probe::SampleMode sample_mode_;
  int target_pid_ = 0;
  std::unique_ptr<ChildProcess> child_;
  std::unique_ptr<probe::MemleakProbe> probe_;
  tracker::SymbolizingResolver resolver_;
  std::unique_ptr<tracker::Tracker> tracker_;
  uint64_t start_ns_ = 0;
  uint64_t next_cgroup_scan_ns_ = 0;
  uint64_t next_preload_stats_ns_ = 0;
  uint64_t next_maps_follow_ns_ = 0;
  std::set<int> cgroup_pids_;   // processes of the cgroup already planned
  std::string comm_;            // the target's name, read while it runs
  bool dwarf_ = false;          // DWARF unwinding in effect
  tracker::DwarfStacks dwarf_stacks_;
  std::vector<alloc::ObjectPlan> command_plan_;  // -c: planned before the fork
  // In-process: the library's path and counters, read at each report and at the exit.
  std::string preload_library_;
  std::optional<alloc::PreloadStatsReader> preload_stats_reader_;
  std::optional<leakwatch_preload_stats> preload_stats_;
  // In-process with sampling: the hooks' records, kept here (probe::MemleakConfig::
  // hook_ring), drained by a thread of their own so that a long report (the first one
  // symbolizes every stack) never lets the ring fill.  hook_mu_ guards the table and the
  // ring's consumer.
  std::optional<tracker::HookTable> hook_table_;
  std::mutex hook_mu_;
  std::thread hook_drainer_;
  std::atomic<bool> hook_stop_{false};
};

}  // namespace leakwatch::session
