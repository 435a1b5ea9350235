// The report model: plain data produced by the tracker/analysis stages and consumed by the
// writers (BCC text, JSON, pprof, folded, HTML).  Writers are pure functions of a Report, so
// every writer is testable without BPF.  Field meanings are documented here once.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace leakwatch::report {

// Every struct compares field by field (defaulted operator==) so that readers can be tested
// for exact round trips.

// Version of the JSON representation (bump when a field changes meaning).
inline constexpr int kReportVersion = 1;

struct Frame {
  uint64_t address = 0;   // absolute address in the traced process (or kernel)
  std::string function;   // demangled; empty when unknown
  std::string module;     // basename of the object (e.g. "libc.so.6"), "[kernel]" for kernel
  std::string module_path;// full path as mapped in the target (may be empty)
  std::string build_id;   // hex GNU build id of the module when known
  uint64_t offset = 0;    // address - function start (when function is known)
  uint64_t module_offset = 0;  // file-relative address inside module (for pprof mappings)
  std::string file;       // source file from DWARF, empty when unknown
  int line = 0;           // 0 when unknown
  bool inlined = false;   // an inlined frame expanded from the same address

  bool operator==(const Frame&) const = default;
};

// A figure that is either exact or an estimate from sampled data.
struct Estimate {
  double sampled = 0;      // the raw (sampled) value as observed
  double estimate = 0;     // the unbiased estimate of the true value
  double ci_lo = 0;        // 95% confidence interval; equals estimate when exact
  double ci_hi = 0;

  bool operator==(const Estimate&) const = default;
};

struct Allocation {        // one outstanding allocation (for -a / show-allocs)
  uint64_t address = 0;
  uint64_t size = 0;
  double age_s = 0;

  bool operator==(const Allocation&) const = default;
};

enum class Verdict { kUnknown, kLeak, kCache, kTransient };

struct StackReport {
  uint64_t stack_id = 0;            // opaque, stable within one session
  std::vector<Frame> frames;        // innermost (allocation call site) first
  bool truncated = false;           // the unwinder could not reach the outermost frame
  Estimate bytes;                   // outstanding bytes
  Estimate count;                   // outstanding allocations
  Estimate alloc_bytes;             // allocated during the session (freed or not)
  Estimate alloc_count;
  Verdict verdict = Verdict::kUnknown;
  double score = 0;                 // confidence in the verdict, [0, 1]
  std::string reason;               // one line with the numbers behind the verdict
  double growth_bytes_per_s = 0;    // slope of outstanding bytes over the session
  double oldest_age_s = 0;          // age of the oldest surviving allocation
  std::vector<Allocation> allocations;  // filled only when requested (-a)

  bool operator==(const StackReport&) const = default;
};

enum class SamplingMode { kExact, kCalls, kBytes };

struct Sampling {
  SamplingMode mode = SamplingMode::kExact;
  uint64_t rate = 1;                // N for kCalls (1 in N calls), R bytes for kBytes

  bool operator==(const Sampling&) const = default;
};

struct Target {
  int pid = 0;                      // 0 in kernel mode or for a cgroup
  std::string comm;
  std::string cgroup;               // when tracing a cgroup
  bool kernel = false;

  bool operator==(const Target&) const = default;
};

// The conclusion drawn from a report (or from an investigation's two steps): the function
// that leaks.  `function` is the innermost frame outside the allocator, libc, the C++
// runtime and leakwatch's own library (analysis/finding.h decides it from each frame's
// object and symbol).  Absent when nothing outstanding could be attributed.
struct Finding {
  std::string function;             // demangled culprit, e.g. "Cache::insert(Key const&)"
  std::string module;               // its object's basename
  std::string file;                 // source file:line when known
  int line = 0;
  double bytes = 0;                 // outstanding (or grown) bytes attributed to it
  double bytes_per_s = 0;           // growth rate over the session
  Verdict verdict = Verdict::kUnknown;
  double confidence = 0;            // [0, 1]
  std::string reason;               // one line with the numbers behind it
  // Which steps saw it: "allocation trace", "growth step".
  std::vector<std::string> seen_by;
  // "agree", "disagree" (the two steps name different functions: both are in `reason`),
  // or "" when only one step ran.
  std::string agreement;
  std::string alert_level;          // "high" (> 100 MB), "medium", "low"

  bool operator==(const Finding&) const = default;
};

// Outstanding bytes over the session, for the HTML report's timeline: one point per report
// (the interval), downsampled when the session is long as the verdicts' histories are
// (neighbouring points averaged in pairs, analysis/history.h), so its size stays bounded
// (at most analysis::StackHistory::kDefaultMaxPoints points per series).
struct StackSeries {
  uint64_t stack_id = 0;            // a stack of the report (StackReport::stack_id)
  std::vector<double> bytes;        // outstanding bytes at each t (estimated when sampling)

  bool operator==(const StackSeries&) const = default;
};

struct Timeline {
  std::vector<double> t_s;          // seconds since attach, increasing
  std::vector<double> total_bytes;  // outstanding bytes of every stack at t
  // The traced process's resident memory at t (NaN where it could not be read); empty when
  // never read (kernel mode, cgroups).
  std::vector<double> rss_bytes;
  std::vector<StackSeries> stacks;  // the report's largest stacks, largest first

  bool operator==(const Timeline&) const = default;
};

struct Report {
  int version = kReportVersion;
  Target target;
  Sampling sampling;
  double duration_s = 0;            // since attach
  int64_t timestamp_unix_ms = 0;    // when this report was produced
  bool final = false;               // the last report of the session
  std::vector<StackReport> stacks;  // ordered as they should be printed (largest first)
  // Every loss counter by name (e.g. "allocs_map_full", "stack_lost", "attach_failed"),
  // always present, zero when nothing was lost.
  std::map<std::string, uint64_t> lost;
  // Human-readable notes about the session (attach failures by function, etc.).
  std::vector<std::string> notes;
  std::optional<Finding> finding;   // what leaks, when one could be named
  std::optional<Timeline> timeline; // absent in reports read from BCC text and in diffs

  bool operator==(const Report&) const = default;
};

const char* to_string(Verdict v);
const char* to_string(SamplingMode m);
std::optional<Verdict> verdict_from_string(const std::string& s);
std::optional<SamplingMode> sampling_mode_from_string(const std::string& s);

}  // namespace leakwatch::report
