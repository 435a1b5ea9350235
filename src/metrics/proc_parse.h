// Parsers for the /proc and cgroup v2 files layer 1 reads.  Each takes the file's text and
// returns plain data, so they are tested on copies of real files (tests/data/proc) and the
// collectors only do I/O.  Sizes are returned in bytes (the kernel's "kB" is KiB).
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/procfs.h"
#include "common/result.h"

namespace leakwatch::metrics {

// /proc/PID/smaps_rollup: exact page-walk totals over all mappings.
struct SmapsRollup {
  uint64_t rss = 0;
  uint64_t pss = 0;
  uint64_t pss_anon = 0;   // Pss_Anon/File/Shmem exist since Linux 5.8; 0 before
  uint64_t pss_file = 0;
  uint64_t pss_shmem = 0;
  uint64_t shared_clean = 0;
  uint64_t shared_dirty = 0;
  uint64_t private_clean = 0;
  uint64_t private_dirty = 0;
  uint64_t anonymous = 0;
  uint64_t swap = 0;
  uint64_t swap_pss = 0;

  // Unique set size: pages mapped by this process only.
  uint64_t uss() const { return private_clean + private_dirty; }
};

// /proc/PID/status (the memory lines; counters kept by the kernel, no page walk).
struct ProcStatus {
  std::string name;
  bool has_mm = false;      // false for kernel threads (no Vm* lines)
  uint64_t vm_size = 0;
  uint64_t vm_rss = 0;
  uint64_t rss_anon = 0;
  uint64_t rss_file = 0;
  uint64_t rss_shmem = 0;
  uint64_t vm_swap = 0;
  int threads = 0;
};

// /proc/PID/stat: one parser for every layer (common/procfs.h).
using leakwatch::ProcStat;
using leakwatch::parse_proc_stat;

// /proc/meminfo (bytes).
struct MemInfo {
  uint64_t total = 0;
  uint64_t free = 0;
  uint64_t available = 0;
  uint64_t swap_total = 0;
  uint64_t swap_free = 0;
};

// One line of a PSI file: share of wall time some/all tasks stalled on memory.
struct PsiLine {
  double avg10 = 0;     // percent
  double avg60 = 0;
  double avg300 = 0;
  uint64_t total_us = 0;  // cumulative stall time, microseconds
};

// /proc/pressure/memory or <cgroup>/memory.pressure.
struct Psi {
  PsiLine some;
  std::optional<PsiLine> full;  // absent in the system-wide CPU file; present for memory
};

// <cgroup>/memory.stat: the keys the agent uses (bytes).
struct CgroupMemoryStat {
  uint64_t anon = 0;
  uint64_t file = 0;
  uint64_t kernel = 0;   // 0 on kernels before 5.18 (no "kernel" key)
  uint64_t shmem = 0;
  uint64_t sock = 0;
};

// <cgroup>/memory.events (cumulative counts).
struct CgroupMemoryEvents {
  uint64_t low = 0;
  uint64_t high = 0;
  uint64_t max = 0;
  uint64_t oom = 0;
  uint64_t oom_kill = 0;
  uint64_t oom_group_kill = 0;
};

[[nodiscard]] Result<SmapsRollup> parse_smaps_rollup(std::string_view text);
[[nodiscard]] Result<ProcStatus> parse_proc_status(std::string_view text);
[[nodiscard]] Result<MemInfo> parse_meminfo(std::string_view text);
[[nodiscard]] Result<Psi> parse_psi(std::string_view text);
[[nodiscard]] Result<CgroupMemoryStat> parse_cgroup_memory_stat(std::string_view text);
[[nodiscard]] Result<CgroupMemoryEvents> parse_cgroup_memory_events(std::string_view text);
// memory.current, memory.swap.current, ...: one decimal number.
[[nodiscard]] Result<uint64_t> parse_u64_file(std::string_view text);
// memory.max / memory.high: a number, or "max" (unlimited) returned as nullopt.
[[nodiscard]] Result<std::optional<uint64_t>> parse_cgroup_limit(std::string_view text);
// /proc/PID/cgroup: the cgroup v2 path (the "0::PATH" line), e.g. "/system.slice/x.service".
[[nodiscard]] Result<std::string> parse_cgroup_v2_path(std::string_view text);
// /proc/PID/mountinfo: mount point of the cgroup2 filesystem ("/sys/fs/cgroup" on a unified
// host, "/sys/fs/cgroup/unified" on a hybrid one).
[[nodiscard]] Result<std::string> find_cgroup2_mount(std::string_view mountinfo);

}  // namespace leakwatch::metrics
