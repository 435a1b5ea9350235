// Layer-1 per-process collection: memory figures from /proc/PID/{stat,status,smaps_rollup}
// and the counters from which rates are derived between two samples.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace leakwatch::metrics {

struct ProcessSample {
  int pid = 0;
  std::string comm;
  uint64_t start_time_ticks = 0;  // with pid, the identity of this process instance
  double t_s = 0;                 // CLOCK_MONOTONIC seconds when sampled
  bool kernel_thread = false;     // no address space: every memory figure is 0
  bool detailed = false;          // smaps_rollup was read: pss and uss are valid
  double smaps_seconds = 0;       // CPU time reading smaps_rollup cost (its page walk)
  // rss, anon, file, shmem and swap come from the kernel's counters (status) on every
  // sample, so a series is consistent whether or not smaps_rollup was read with it.
  uint64_t rss = 0;               // bytes
  uint64_t pss = 0;               // smaps_rollup
  uint64_t uss = 0;               // Private_Clean + Private_Dirty (smaps_rollup)
  uint64_t anon = 0;              // anonymous resident memory
  uint64_t file = 0;              // file-backed resident memory (page cache mapped)
  uint64_t shmem = 0;
  uint64_t swap = 0;
  uint64_t vsz = 0;
  uint64_t minflt = 0;            // cumulative counts
  uint64_t majflt = 0;
  uint64_t cpu_ticks = 0;         // utime + stime, clock ticks
  int threads = 0;
};

// Per-second rates between two samples of the same process instance.
struct ProcessRates {
  double minflt_per_s = 0;
  double majflt_per_s = 0;
  double cpu_percent = 0;  // of one CPU
};

// Not thread-safe: owns the scratch buffer reused across reads (one per collecting thread).
class ProcessCollector {
 public:
  // proc_root is "/proc" except in tests.  read_smaps=false skips smaps_rollup (the only
  // file whose cost grows with the process's size: the kernel walks its page tables).
  explicit ProcessCollector(std::string proc_root = "/proc", bool read_smaps = true);

  // Errors carry errno: is_gone() tells a vanished process from a refused read.
  [[nodiscard]] Result<ProcessSample> collect(int pid) { return collect(pid, read_smaps_); }
  // with_smaps=false skips smaps_rollup for this sample only.
  [[nodiscard]] Result<ProcessSample> collect(int pid, bool with_smaps);

 private:
  std::string proc_root_;
  bool read_smaps_;
  std::string buf_;
  std::string path_;
};

// nullopt when the samples are not of the same instance (pid reuse or restart) or not
// ordered in time.
std::optional<ProcessRates> rates_between(const ProcessSample& prev, const ProcessSample& cur);

// Clock ticks per second (sysconf(_SC_CLK_TCK)).
double clock_ticks_per_second();
// CLOCK_MONOTONIC in seconds (the timebase of every sample) and the calling thread's CPU
// time (common/clock.h).
using leakwatch::monotonic_seconds;
using leakwatch::thread_cpu_seconds;

// Process discovery.  Thread-safe.
[[nodiscard]] Result<std::vector<int>> list_pids(const std::string& proc_root = "/proc");
// Processes whose comm equals `comm`; names longer than the kernel's 15 characters are
// compared on their first 15, as the kernel stores them truncated.
[[nodiscard]] Result<std::vector<int>> find_pids_by_comm(std::string_view comm,
                                                         const std::string& proc_root = "/proc");

}  // namespace leakwatch::metrics
