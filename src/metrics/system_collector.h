// Layer-1 collection for the system (meminfo, PSI), cgroup v2 memory controllers, and the
// agent's own resource use.  All functions are thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "metrics/proc_parse.h"

namespace leakwatch::metrics {

struct SystemSample {
  double t_s = 0;              // CLOCK_MONOTONIC seconds
  MemInfo meminfo;
  std::optional<Psi> pressure; // absent when the kernel has no PSI (CONFIG_PSI=n or psi=0)
};

struct CgroupSample {
  std::string dir;             // absolute path of the cgroup directory
  double t_s = 0;
  uint64_t current = 0;        // memory.current, bytes
  std::optional<uint64_t> max; // memory.max of this cgroup; nullopt = "max" (unlimited)
  // The tightest memory.max on the path from this cgroup up to the root: the limit that
  // actually applies.  nullopt when no ancestor is limited either.
  std::optional<uint64_t> effective_max;
  uint64_t anon = 0;           // memory.stat
  uint64_t file = 0;
  uint64_t swap = 0;           // memory.swap.current (0 without swap accounting)
  CgroupMemoryEvents events;
  std::optional<Psi> pressure; // memory.pressure
};

struct SelfUsage {
  double cpu_seconds = 0;      // user + system CPU time of the agent since it started
  uint64_t rss_bytes = 0;
  uint64_t vsz_bytes = 0;
};

[[nodiscard]] Result<SystemSample> collect_system(const std::string& proc_root = "/proc");

// `dir` must be a cgroup v2 directory with the memory controller enabled; `root` is the
// cgroup2 mount point (the walk for effective_max stops there).
[[nodiscard]] Result<CgroupSample> collect_cgroup(const std::string& dir, const std::string& root);

// Members of a cgroup (cgroup.procs).
[[nodiscard]] Result<std::vector<int>> cgroup_pids(const std::string& dir);

// The cgroup2 mount point of this host, from /proc/self/mountinfo.
[[nodiscard]] Result<std::string> cgroup2_mount(const std::string& proc_root = "/proc");

// Absolute cgroup v2 directory of a process: mount point + the "0::" path.
[[nodiscard]] Result<std::string> process_cgroup_dir(int pid, const std::string& cgroup_root,
                                                     const std::string& proc_root = "/proc");

[[nodiscard]] Result<SelfUsage> self_usage();

}  // namespace leakwatch::metrics
