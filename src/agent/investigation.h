// The interfaces between the agent and the layers it runs on a suspect: layer 2 (the
// `leakwatch growth` machinery: where resident memory grows, from page-fault and mmap-family
// tracepoints) and layer 3 (the `leakwatch memleak` machinery: outstanding allocations from
// allocator uprobes).  The agent decides when, on what and for how long; a GrowthLocator
// and then an Investigator trace and return their reports.  The real ones (BPF, in-process)
// are plugged in by the CLI; tests use fakes.
//
//   trigger ─▶ GrowthLocator (growth_seconds) ─▶ Investigator (the rest of the time box)
//                    │                                   │
//                    └──────────▶ ReportStore ◀──────────┘  one stored investigation
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/memory_trail.h"
#include "analysis/overhead_guard.h"
#include "common/result.h"
#include "report/growth_report.h"
#include "report/model.h"

namespace leakwatch::agent {

struct InvestigationRequest {
  int pid = 0;
  std::string comm;
  std::string cgroup;                    // the configured cgroup for cgroup targets, else ""
  std::string target;                    // the configured target's label ("comm:x", ...)
  uint64_t sample_rate = 1000;           // 1 in N allocation calls
  double duration_s = 300;               // time box, already capped by the environment
  double overhead_budget_percent = 10;   // of the target's own CPU time
  std::string reason;                    // why: the condition(s) and their figures
  // Load the sampling library into the process (memleak --inject): "never", "over_budget"
  // (when the plain trace exceeds the budget, instead of ending) or "always".
  std::string inject = "never";
};

// What the investigation cost the target, as estimated by the overhead guard.
using InvestigationOverhead = analysis::OverheadEstimate;

enum class InvestigationEnd {
  kDuration,        // the time box expired
  kOverheadBudget,  // the guard stopped it early (report kept)
  kStopped,         // the agent is stopping (SIGTERM/SIGINT; report kept)
  kTargetExited,    // the process went away
};
const char* to_string(InvestigationEnd end);

struct InvestigationResult {
  report::Report report;         // final report (report.final = true)
  InvestigationOverhead overhead;
  InvestigationEnd end = InvestigationEnd::kDuration;
};

// Thread-safety: the agent creates one Investigator per investigation (InvestigatorFactory)
// and calls run() once, on its own thread; several may run at once for different targets.
class Investigator {
 public:
  virtual ~Investigator() = default;
  // Runs until request.duration_s, the overhead budget or `stop` (checked at least every
  // 100 ms), then returns the final report.  An error means no report could be produced
  // (attach failed, no such process at start, ...).
  virtual Result<InvestigationResult> run(const InvestigationRequest& request,
                                          const std::atomic<bool>& stop) = 0;
};

// Returns nullptr when investigations cannot run (e.g. no BPF permission): counted and
// reported, the agent keeps watching.
using InvestigatorFactory = std::function<std::unique_ptr<Investigator>()>;

struct GrowthResult {
  report::GrowthReport report;   // final report (report.final = true)
  // kDuration, kStopped or kTargetExited (the growth step has no overhead guard: its
  // tracepoint programs cost a few percent at most, and it is short).
  InvestigationEnd end = InvestigationEnd::kDuration;
};

// Thread-safety: as Investigator; run() is called once, on the investigation's thread,
// before the Investigator of the same investigation.
class GrowthLocator {
 public:
  virtual ~GrowthLocator() = default;
  // Traces request.pid's page faults and mappings until request.duration_s, `stop`
  // (checked at least every 100 ms) or the process's exit, then returns the final report.
  // An error means no report could be produced (no BTF, no permission, no such process).
  virtual Result<GrowthResult> run(const InvestigationRequest& request,
                                   const std::atomic<bool>& stop) = 0;
};

// Returns nullptr when the growth step cannot run: counted, and the allocation trace runs
// without it.
using GrowthLocatorFactory = std::function<std::unique_ptr<GrowthLocator>()>;

// The growth step of one investigation, as it went.
struct GrowthStep {
  double requested_s = 0;          // its time box
  // duration|stopped|target_exited (it produced a report), failed|unavailable (it did not)
  std::string outcome;
  std::string error;               // why there is no report
  std::optional<GrowthResult> result;
};

// Everything one investigation produced (what the agent counts and ReportStore stores).
struct InvestigationRecord {
  InvestigationRequest request;                // the allocation trace's request
  std::optional<InvestigationResult> memleak;  // absent: not run, or failed (see below)
  // How the investigation ended: to_string(InvestigationEnd) of the allocation trace, or
  // why it did not run or produced nothing: "failed", "unavailable", or the growth step's
  // "stopped"/"target_exited".  The outcome label of leakwatch_investigations_total.
  std::string end;
  std::string memleak_error;                   // why there is no allocation report, or ""
  std::optional<GrowthStep> growth;            // absent: no growth step configured
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  // Layer 1's figures of the process before the trigger and during the investigation.
  std::optional<MemorySeries> memory;
};

// Runs one investigation on the calling thread: the growth step for growth_s seconds (none
// when 0), then the allocation trace for the rest of request.duration_s.  A growth step
// that fails or cannot run is recorded and the allocation trace runs anyway; one that ends
// because of `stop` or the target's exit leaves nothing to trace after it.
InvestigationRecord run_investigation(const InvestigationRequest& request, double growth_s,
                                      const GrowthLocatorFactory& growth,
                                      const InvestigatorFactory& investigator,
                                      const std::atomic<bool>& stop);

}  // namespace leakwatch::agent
