// Layer 1 from a BPF task iterator: every process's identity and memory counters in one
// read (bpf/task_iter.bpf.c), instead of three /proc files per process.
//
//   Create(): open the embedded object, load, attach the iterator      (once)
//   scan():   bpf_iter_create() -> read() until EOF -> parse records   (every sample)
//
// What it gives per process (thread-group leader with an address space): pid, ppid, comm,
// start time, cgroup v2 id, RSS by kind (anon, file, shmem), swap, VSZ, minor and major
// faults and CPU time of the whole process (its threads summed), thread count.  What it
// does not: PSS/USS (smaps_rollup walks page tables), the cgroup's path (resolved from the
// id by CgroupPaths), anything of a kernel thread.
//
// Which RSS figure matches /proc/PID/status: the mm counters are per-CPU counters (6.2+),
// a global count plus a part per CPU that is folded into the count once it passes the
// batch (max(32, 2 x CPUs) pages).  /proc/PID/status reported the count alone
// (percpu_counter_read) until 6.16, the exact sum (percpu_counter_sum) since; on this
// project's 6.18 hosts the count trails /proc by up to the batch per CPU in most processes
// while the sum equals it.  The record carries both; `rss_figure` chooses, kAuto picking
// what this kernel's /proc reports: decided at Create() from processes whose two figures
// differ, else from the kernel release.
//
// Thread-safety: not thread-safe (one owner, the agent's loop); the object is move-only
// through its unique_ptr and destroying it detaches the iterator.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "metrics/process_collector.h"
#include "probe/bpf_handles.h"

struct task_iter_bpf;

namespace leakwatch::metrics {

enum class RssFigure {
  kAuto,   // the one /proc/PID/status reports on this kernel (kSum from 6.16 on)
  kSum,    // global count + every CPU's part (exact at the time of the read)
  kCount,  // the global count alone (what /proc reported before 6.16)
};

struct TaskIterOptions {
  std::string btf_path;             // custom kernel BTF ("" = /sys/kernel/btf/vmlinux)
  RssFigure rss_figure = RssFigure::kAuto;
  std::string proc_root = "/proc";  // where kAuto reads status files to decide
};

// One process as the iterator saw it.
struct TaskEntry {
  ProcessSample sample;             // rss/anon/file/shmem/swap in the chosen figure
  int ppid = 0;
  uint64_t cgroup_id = 0;           // cgroup v2 id (inode of the cgroup directory)
  uint64_t start_boottime_ns = 0;
  // Pages per mm counter (file, anon, swap, shmem), both figures (equal when the per-CPU
  // parts could not be summed).
  std::array<int64_t, 4> pages_sum{};
  std::array<int64_t, 4> pages_count{};
};

struct TaskScanStats {
  size_t processes = 0;
  size_t threads = 0;               // thread records folded into their process
  size_t orphan_threads = 0;        // thread records whose process had no record
  size_t bytes = 0;                 // read from the iterator
};

class TaskIterator {
 public:
  // Fails with a one-line reason when the kernel or the caller cannot run the iterator
  // (no BTF, not permitted, iterators not supported): the caller falls back to /proc.
  [[nodiscard]] static Result<std::unique_ptr<TaskIterator>> Create(
      const TaskIterOptions& options = {});
  ~TaskIterator();
  TaskIterator(const TaskIterator&) = delete;
  TaskIterator& operator=(const TaskIterator&) = delete;

  // Every process of the system, in pid order.  `out` is cleared first; its capacity and
  // the read buffer are reused between scans.
  [[nodiscard]] Result<void> scan(std::vector<TaskEntry>& out);

  // True when the per-CPU parts are summed (pages_sum differs from pages_count).
  bool sums_percpu() const { return sums_percpu_; }
  // The figure the samples carry (kSum or kCount, never kAuto), and how it was chosen:
  // "configured", "matches /proc" (compared at Create), "kernel release", or "count only"
  // (the per-CPU parts could not be summed).
  RssFigure rss_figure() const { return figure_; }
  const std::string& figure_reason() const { return figure_reason_; }
  const TaskScanStats& last_stats() const { return stats_; }

 private:
  TaskIterator() = default;

  struct SkelDeleter { void operator()(task_iter_bpf* s) const; };
  std::unique_ptr<task_iter_bpf, SkelDeleter> skel_;
  probe::BpfLink link_;
  bool sums_percpu_ = false;
  RssFigure figure_ = RssFigure::kCount;
  std::string figure_reason_;
  uint64_t page_size_ = 4096;
  std::vector<char> buf_;
  TaskScanStats stats_;
};

// Parses the iterator's output (records back to back, task_iter.h) into entries, threads
// folded into their process.  Pure; exposed for tests.  Fails on a truncated or unknown
// record.
[[nodiscard]] Result<void> parse_task_records(const char* data, size_t size, uint64_t page_size,
                                              RssFigure figure, std::vector<TaskEntry>& out,
                                              TaskScanStats& stats);

// The figure /proc/PID/status reports on a kernel of this release ("6.18.44-...").
RssFigure proc_status_figure(const std::string& kernel_release);

// Which figure /proc/PID/status shows, from up to 32 processes whose figures differ (their
// status files are read); nullopt when none tells them apart or the votes are mixed.
std::optional<RssFigure> figure_shown_by_proc(const std::vector<TaskEntry>& entries,
                                              uint64_t page_size, const std::string& proc_root);

}  // namespace leakwatch::metrics
