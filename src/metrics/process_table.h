// Layer 1's view of the system's processes, refreshed once per sample, from the BPF task
// iterator where the kernel and the agent's privileges allow it, else from /proc:
//
//   refresh(list=true)  iterator: one scan gives every process's figures
//                       /proc:    a directory listing and each /proc/PID/comm
//   pids(), comm()      what targets resolve against (comm, all, Kubernetes)
//   sample(pid)         the scan's figures, or /proc/PID/{stat,status} (pid targets, /proc
//                       mode, and processes the iterator does not visit)
//   cgroup_path(pid)    from the scan's cgroup id (CgroupPaths), or /proc/PID/cgroup
//
// The iterator is used only when the agent is in the initial pid namespace (its pids are
// the kernel's global ones, which /proc then shows too).  A process the kernel's iterator
// does not visit (seen on this project's VMs: their pid 1) is found by a /proc listing
// every `proc_list_every_s` and read from /proc from then on.
//
// Thread-safety: not thread-safe (the agent's loop owns it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "metrics/cgroup_paths.h"
#include "metrics/process_collector.h"
#include "metrics/task_iter.h"

namespace leakwatch::metrics {

enum class Layer1Source { kAuto, kIterator, kProc };
const char* to_string(Layer1Source s);

struct ProcessTableOptions {
  std::string proc_root = "/proc";
  std::string cgroup_root;            // cgroup2 mount point; "" = none
  Layer1Source source = Layer1Source::kAuto;
  RssFigure rss_figure = RssFigure::kAuto;
  double proc_list_every_s = 10;      // iterator mode: look for processes it does not visit
  std::string btf_path;
};

class ProcessTable {
 public:
  // kIterator fails when the iterator cannot run; kAuto falls back to /proc and says why
  // in fallback_reason().
  [[nodiscard]] static Result<std::unique_ptr<ProcessTable>> create(ProcessTableOptions options);

  // One sample.  `list`: the caller resolves targets against every process (comm, all,
  // Kubernetes targets); without it the iterator is not run and sample() reads /proc.
  void refresh(bool list);

  bool uses_iterator() const { return iter_ != nullptr; }
  const std::string& fallback_reason() const { return fallback_reason_; }
  const TaskIterator* iterator() const { return iter_.get(); }

  // Every process after the last refresh(true), in pid order (kernel threads included in
  // /proc mode, where they are only told apart when read).
  const std::vector<int>& pids() const { return pids_; }
  // Its comm, or nullptr when unknown.
  const std::string* comm(int pid) const;
  // Figures of `pid` (no PSS/USS): from the last scan, else read from /proc.  Errors carry
  // errno as ProcessCollector's do.
  [[nodiscard]] Result<ProcessSample> sample(int pid);
  // Its cgroup v2 directory relative to the mount ("/system.slice/x.service"), or nullopt.
  // From /proc/PID/cgroup it is read once per pid while the pid is listed.
  std::optional<std::string> cgroup_path(int pid);
  // Its cgroup id from the last scan (0: not scanned).
  uint64_t cgroup_id(int pid) const;
  Layer1Source configured_source() const { return options_.source; }

  // CPU seconds the last refresh took on the calling thread.
  double last_refresh_cpu_s() const { return last_refresh_cpu_s_; }
  // Processes read from /proc because the iterator does not visit them.
  size_t unvisited() const { return unvisited_.size(); }

 private:
  explicit ProcessTable(ProcessTableOptions options);
  void list_from_proc();
  void find_unvisited();
  const TaskEntry* scanned(int pid) const;  // this sample's entry, or nullptr

  ProcessTableOptions options_;
  std::unique_ptr<TaskIterator> iter_;
  std::string fallback_reason_;
  ProcessCollector collector_;
  CgroupPaths cgroup_paths_;

  std::vector<TaskEntry> entries_;                 // last scan, pid order (binary search)
  bool scanned_ = false;                           // entries_ are this sample's
  std::vector<int> pids_;
  std::unordered_map<int, std::string> comms_;
  std::unordered_map<int, std::string> proc_cgroups_;  // pid -> path read from /proc
  // Iterator mode: processes the iterator does not visit, and kernel threads (by pid and
  // start time, so a reused pid is looked at again).
  std::set<int> unvisited_;
  std::map<int, uint64_t> kernel_threads_;
  double last_list_s_ = -1e300;
  double last_refresh_cpu_s_ = 0;
  std::string buf_;
};

// True when this process is in the initial pid namespace (/proc/self/status NSpid has one
// number): the task iterator's pids are then the ones /proc shows.
bool in_initial_pid_namespace();

}  // namespace leakwatch::metrics
