// GrowthTracker: turns what the growth probe saw into GrowthReports.
//
//   events, in the order they happened:
//     mmap/munmap/mremap/brk -> RegionMap per process
//       -> anonymous (and file) bytes still mapped, by the stack that mapped them
//     sampled faults -> classified by the region they hit (tracked regions first, then
//       the process's /proc maps for what was mapped before attach or by exec):
//       anonymous, a private write to a file page (an anonymous copy: counted anonymous),
//       file-backed, or unknown -> counts by {pid, stack, class}
//       -> estimates per stack: faults x N x page size, with a 95% interval
//   rss_stat figures and counters -> per-process RSS and session totals
//   frames resolved once per (pid, stack) (FrameResolver) -> report::GrowthReport
//
// Thread-safety: neither class is thread-safe; one owner drives each.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/procfs.h"
#include "probe/growth_types.h"
#include "report/growth_report.h"
#include "tracker/growth_regions.h"
#include "tracker/tracker.h"

namespace leakwatch::tracker {

enum class FaultClass { kAnon = 0, kFile = 1, kUnknown = 2 };
inline constexpr int kFaultClasses = 3;

struct GrowthTrackerConfig {
  report::Target target;
  uint32_t sample_period = 1;
  uint64_t page_size = 4096;
  probe::StackWalker walker = probe::StackWalker::kFramePointers;
  // Regions of a process that exited stay in the report (one traced process: what it had
  // grown when it ended) or are dropped (a cgroup: processes come and go).
  bool keep_exited = true;
  // The process's current maps, for faults outside the regions seen being mapped.
  std::function<Result<std::vector<MapEntry>>(uint32_t tgid)> read_maps;
};

struct GrowthSnapshot {
  std::vector<probe::RssEntry> rss;
  probe::GrowthCounters counters{};
  std::function<std::vector<uint64_t>(uint64_t)> read_stack;
  std::function<std::string(int)> comm_of;  // process name, "" when unknown
};

class GrowthTracker {
 public:
  GrowthTracker(GrowthTrackerConfig cfg, FrameResolver& resolver);

  // Feeds one event (sampled fault, mmap/munmap/mremap/brk, exec, exit); events must come
  // in the order they happened.
  void on_event(const lw_gr_event& e);

  // How a fault at `addr` of process `tgid` is classified now.
  FaultClass classify(uint32_t tgid, uint64_t addr, bool write);

  report::GrowthReport update(const GrowthSnapshot& snap, double session_s);

  // Resolves the frames of the stacks seen since the last call.  Call it every second or
  // so while the processes live: once a process has exited its maps cannot be read.
  void resolve_new(const std::function<std::vector<uint64_t>(uint64_t)>& read_stack);

 private:
  struct StackKey {
    uint32_t tgid;
    uint64_t stack;
    auto operator<=>(const StackKey&) const = default;
  };
  const std::vector<report::Frame>& frames_for(
      const StackKey& key, const std::function<std::vector<uint64_t>(uint64_t)>& read_stack);
  void note_stack(uint32_t tgid, uint64_t stack);

  struct BaseMaps {  // a /proc/PID/maps snapshot
    std::vector<MapEntry> entries;  // sorted by start
    uint64_t read_at_fault = 0;     // faults_seen_ when read (re-read at most once per fault)
  };
  const MapEntry* base_entry(uint32_t tgid, uint64_t addr);

  GrowthTrackerConfig cfg_;
  FrameResolver& resolver_;
  std::map<uint32_t, RegionMap> regions_;
  std::map<uint32_t, BaseMaps> base_maps_;
  std::map<StackKey, std::array<uint64_t, kFaultClasses>> sampled_;
  std::map<StackKey, std::vector<report::Frame>> frames_;
  std::set<StackKey> unresolved_;  // seen in events, frames not resolved yet
  uint64_t faults_seen_ = 0;
};

// Loss counters as the growth report names them (always all present).
std::map<std::string, uint64_t> growth_loss_counters(const probe::GrowthCounters& c);

// A 95% interval for a count estimated from k sampled items each kept with probability p
// (k / p): the estimate and [lo, hi] (lo never below k, the observed count).
report::Estimate sampled_count_estimate(uint64_t k, double p, double weight);

}  // namespace leakwatch::tracker
