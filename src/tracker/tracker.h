// Tracker: turns snapshots of the memleak BPF maps into Reports.
//
//   snapshot (outstanding allocations by address, per-stack totals, counters)
//     -> group by (process, stack id), age filter (-o), size estimates per sampling mode
//     -> per-stack time series (one point per report) -> verdicts
//     -> frames resolved once per stack (FrameResolver) -> report::Report
//
// Thread-safety: not thread-safe; one owner calls update().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "analysis/history.h"
#include "probe/memleak_types.h"
#include "report/model.h"

namespace leakwatch::tracker {

// Resolves the raw instruction pointers of a stack (innermost first) into frames.
class FrameResolver {
 public:
  virtual ~FrameResolver() = default;
  virtual std::vector<report::Frame> resolve(uint32_t tgid, const std::vector<uint64_t>& ips) = 0;
};

enum class SortBy { kSize, kCount };

struct TrackerConfig {
  report::Sampling sampling;
  report::Target target;
  uint64_t min_age_ns = 0;     // -o: allocations younger than this are not reported
  bool show_allocs = false;    // -a: list the outstanding allocations per stack
  bool combined_only = false;  // --combined-only: per-stack totals kept by BPF
  SortBy sort_by = SortBy::kSize;
};

struct Snapshot {
  std::vector<probe::OutstandingAlloc> allocs;
  std::vector<probe::CombinedEntry> combined;
  probe::Counters counters{};
  size_t failed_attaches = 0;
  std::function<std::vector<uint64_t>(int32_t)> read_stack;
  // --unwind dwarf: the unwound stack of an allocation (0 = none; the frame-pointer stack
  // from BPF is used then).
  std::function<uint32_t(uint32_t tgid, uint64_t addr)> dwarf_stack_of;
  // Stacks kept in user space (DWARF-unwound, or reported by the in-process hooks): the
  // frames and whether they are truncated, for allocations whose stack_id has
  // Tracker::kUserStackBit set (the id is the rest).
  std::function<std::pair<std::vector<uint64_t>, bool>(uint32_t tgid, uint32_t id)> read_user_stack;
  // The traced process's resident memory now, for the report's timeline (nullopt: not read).
  std::optional<double> rss_bytes;
};

class Tracker {
 public:
  // Stack ids with this bit set are stacks kept in user space (Snapshot::read_user_stack),
  // not BPF ones.
  static constexpr uint32_t kUserStackBit = 1u << 30;

  Tracker(TrackerConfig cfg, FrameResolver& resolver);

  // `now_ns` is CLOCK_MONOTONIC (the clock of the BPF timestamps); `session_s` the time
  // since attach.  Each call adds one point to every stack's history and to the session's
  // timeline (report.timeline: the largest stacks of this report over the session).
  report::Report update(const Snapshot& snap, uint64_t now_ns, double session_s);

 private:
  struct StackKey {
    uint32_t tgid;
    int32_t stack_id;
    auto operator<=>(const StackKey&) const = default;
  };
  struct StackState {
    analysis::StackHistory history;
    std::vector<report::Frame> frames;
    bool truncated = false;
    bool resolved = false;
  };
  const StackState& frames_for(const StackKey& key, const Snapshot& snap);
  report::Timeline timeline(const report::Report& rep) const;

  // Stacks of a report drawn in its timeline.
  static constexpr size_t kTimelineStacks = 8;

  TrackerConfig cfg_;
  FrameResolver& resolver_;
  std::map<StackKey, StackState> stacks_;
  // Every update adds a point to both, so their times are the timeline's axis: total
  // outstanding bytes (and allocations), and the process's RSS (NaN when not read).
  analysis::StackHistory total_;
  analysis::StackHistory rss_;
  bool rss_seen_ = false;
};

// Loss counters as the report names them (always all present).
std::map<std::string, uint64_t> loss_counters(const probe::Counters& c, size_t failed_attaches);

}  // namespace leakwatch::tracker
