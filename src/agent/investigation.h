// The interface between the agent and layer 3 (the `leakwatch memleak` machinery): the agent
// decides when, on what and for how long; an Investigator traces allocations and returns a
// report.  The real one (BPF memleak, in-process) is plugged in by the CLI; tests use fakes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
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
};

// What the investigation cost the target, as estimated by the overhead guard.
struct InvestigationOverhead {
  double target_cpu_s = 0;       // CPU time the target used during the investigation
  uint64_t probe_hits = 0;       // BPF program runs (bpf_prog_info run_cnt)
  double per_hit_cost_ns = 0;    // measured cost of one hit (run_time_ns / run_cnt + trap)
  double estimated_cost_s = 0;   // probe_hits × per_hit_cost
  double overhead_percent = 0;   // estimated_cost / target_cpu × 100
};

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

}  // namespace leakwatch::agent
