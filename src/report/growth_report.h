// The report of `leakwatch growth`: where resident and mapped memory grew, by stack.
// Plain data produced by tracker::GrowthTracker and consumed by the growth writers
// (growth_writer.h): text, JSON, and pprof/folded through the allocation model's writers.
//
// Two measures per stack, never added together (a region mapped by one stack and then
// touched by another would count twice):
//   faulted_bytes  anonymous pages first touched by the stack (page faults x page size);
//                  estimated when fault stacks are sampled;
//   mapped_bytes   anonymous bytes mapped by the stack (mmap, mremap growth, brk growth)
//                  and still mapped (net of munmap/mremap/brk shrink), exact.
// Stacks are ordered by growth_bytes = max(faulted_bytes, mapped_bytes), largest first.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "report/model.h"

namespace leakwatch::report {

// Version of the growth JSON representation (bump when a field changes meaning).
inline constexpr int kGrowthReportVersion = 1;

struct GrowthStack {
  uint64_t stack_id = 0;            // opaque, stable within one session
  int pid = 0;
  std::vector<Frame> frames;        // innermost first
  Estimate faulted_bytes;           // anonymous first touches x page size
  Estimate faults;                  // anonymous faults
  Estimate file_faulted_bytes;      // file-backed faults x page size (page cache, not heap)
  double mapped_bytes = 0;          // anonymous, still mapped, exact
  uint64_t mapped_regions = 0;      // regions (or pieces of regions) behind mapped_bytes
  double brk_bytes = 0;             // the part of mapped_bytes that is program break
  double file_mapped_bytes = 0;     // file mappings made by the stack, still mapped
  double growth_bytes = 0;          // max(faulted_bytes.estimate, mapped_bytes)

  bool operator==(const GrowthStack&) const = default;
};

// One kmem:rss_stat counter of a process, in bytes (the kernel's approximate per-CPU
// batched value, as the tracepoint reports it).
struct RssFigure {
  bool seen = false;                // no update during the session: the rest is 0
  int64_t first = 0;                // first value seen after attach
  int64_t current = 0;
  int64_t peak = 0;

  bool operator==(const RssFigure&) const = default;
};

struct GrowthProcess {
  int pid = 0;
  std::string comm;
  RssFigure rss_anon, rss_file, rss_shmem, rss_swap;

  bool operator==(const GrowthProcess&) const = default;
};

struct GrowthTotals {
  uint64_t faults = 0;              // page faults of the target(s), exact
  // By class: exact when every fault was classified, else estimated from the sampled ones.
  double anon_faults = 0, file_faults = 0, unknown_faults = 0;
  bool classes_estimated = false;
  uint64_t sampled_faults = 0;      // faults whose stack was captured
  double faulted_bytes = 0;         // anonymous, estimated, all stacks
  double mapped_bytes = 0;          // anonymous, still mapped, all stacks
  double brk_bytes = 0;
  double file_mapped_bytes = 0;
  uint64_t mmap_calls = 0, munmap_calls = 0, mremap_calls = 0, brk_calls = 0;

  bool operator==(const GrowthTotals&) const = default;
};

// How the stacks were unwound: walked in BPF (frame pointers), or copied at each event and
// unwound in user space with the objects' CFI (DWARF), with what that cost and lost.
struct GrowthUnwind {
  std::string mode;                 // "fp" or "dwarf"
  std::string decision;             // why (--unwind auto examines the objects)
  uint64_t snapshot_size = 0;       // bytes of user stack per snapshot, at most (dwarf)
  uint64_t snapshots = 0;           // events sent with a snapshot
  uint64_t snapshot_bytes = 0;      // user stack bytes copied into them
  uint64_t unwound = 0;             // snapshots unwound
  uint64_t truncated = 0;           // ... whose stack stopped before the outermost frame
  uint64_t failed = 0;              // snapshots that could not be unwound (also in lost)
  double unwind_ms = 0;             // user-space time spent unwinding

  bool operator==(const GrowthUnwind&) const = default;
};

struct GrowthReport {
  int version = kGrowthReportVersion;
  Target target;
  uint64_t sample_period = 1;       // 1 in N fault stacks captured (random draw per fault)
  uint64_t page_size = 4096;
  std::string stack_walker;         // "fp" (leakwatch's walk), "kernel" or "dwarf"
  GrowthUnwind unwind;
  double duration_s = 0;            // since attach
  int64_t timestamp_unix_ms = 0;
  bool final = false;
  std::vector<GrowthStack> stacks;  // largest growth first
  std::vector<GrowthProcess> processes;
  GrowthTotals totals;
  std::map<std::string, uint64_t> lost;  // every loss counter, zero when nothing was lost
  std::vector<std::string> notes;

  bool operator==(const GrowthReport&) const = default;
};

}  // namespace leakwatch::report
