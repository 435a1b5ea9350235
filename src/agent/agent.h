// The agent: every interval it resolves the configured targets to processes (and cgroups),
// collects their layer-1 figures, feeds one GrowthDetector per process instance, evaluates
// the trigger conditions and starts at most one investigation per target (and at most
// max_concurrent overall), each on its own thread: a growth step (layer 2, where resident
// memory grows) and then an allocation trace (layer 3) in one time box, storing both
// reports together when it ends.
//
//   tick() ─▶ resolve targets ─▶ collect ─▶ detect ─▶ triggers ─▶ investigation thread
//                                  │                                   │
//                                  ▼                                   ▼
//                              Snapshot (under mutex)             ReportStore
//                                  │                                   │
//          metrics_text() / status_lines() / reports_json()  ◀─────────┘
//
// Thread-safety: tick(), reload() and shutdown() are called from one thread (the loop);
// the const accessors may be called from any thread (the HTTP server's).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/config.h"
#include "common/clock.h"
#include "agent/detection.h"
#include "agent/investigation.h"
#include "agent/kube_pods.h"
#include "agent/report_store.h"
#include "agent/workload.h"
#include "metrics/process_collector.h"
#include "metrics/process_table.h"
#include "metrics/system_collector.h"
#include "sink/sinks.h"

namespace leakwatch::agent {

struct AgentOptions {
  InvestigatorFactory investigator;  // empty: investigations are counted as unavailable
  GrowthLocatorFactory growth;       // empty: growth steps are counted as unavailable
  std::string proc_root = "/proc";
  std::string cgroup_root;           // cgroup2 mount point; "" = from /proc/self/mountinfo
  // CPU a smaps_rollup read may cost per sample: a process whose page walk costs more is
  // read only every ceil(cost / budget) samples (at most every 60th).
  double smaps_budget_s = 1e-3;
};

// One watched process or cgroup after the last tick.
struct WatchedView {
  std::string target;                       // configured target label
  bool is_cgroup = false;
  int pid = 0;                              // processes
  std::string comm;
  double start_time_unix_s = 0;
  metrics::ProcessSample sample;
  std::optional<metrics::ProcessRates> rates;
  std::optional<metrics::CgroupSample> cgroup;  // cgroups
  WorkloadLabels workload;                  // processes in a container or pod
  Evaluation eval;
  LimitContext limit;
  bool investigating = false;
};

struct TargetView {
  std::string target;
  int line = 0;
  std::string problem;  // why nothing is watched ("no process named x", an error), or ""
  size_t processes = 0;
  bool investigating = false;
};

struct Snapshot {
  double t_s = 0;
  std::string environment;
  std::optional<metrics::SystemSample> system;
  std::vector<TargetView> targets;
  std::vector<WatchedView> watched;
};

// Cumulative counters, exported as Prometheus counters.
struct AgentCounters {
  std::map<std::pair<std::string, std::string>, uint64_t> triggers;        // target, reason
  std::map<std::pair<std::string, std::string>, uint64_t> investigations;  // target, outcome
  std::map<std::pair<std::string, std::string>, uint64_t> growth_steps;    // target, outcome
  std::map<std::string, uint64_t> collection_errors;  // kind
  std::map<std::string, uint64_t> lost;  // report loss counter -> sum ("growth_" + the
                                         // growth report's counters)
  uint64_t reports_stored = 0;
  uint64_t report_errors = 0;
  uint64_t ticks = 0;
  double last_tick_s = 0;                             // duration of the last collection
  double last_tick_cpu_s = 0;                         // its CPU time (the agent's thread)
  double last_layer1_cpu_s = 0;                       // of which the process table's refresh
  uint64_t smaps_reads = 0;                           // smaps_rollup reads (suspects)
  uint64_t smaps_skipped = 0;                         // suspects not read: size or cost cap
};

// Where layer 1's figures come from (exported as leakwatch_agent_layer1_info).
struct Layer1Info {
  std::string source;          // "bpf" or "proc"
  std::string fallback_reason; // why not the iterator ("" when it is used)
  std::string rss_figure;      // "sum" or "count" (bpf), "" (proc)
  size_t processes = 0;        // in the last refresh
  size_t unvisited = 0;        // read from /proc because the iterator does not visit them
};

class Agent {
 public:
  // Fails when a pid or cgroup target cannot be watched (a clear message naming the target
  // and its line) or reports_dir cannot be created.
  [[nodiscard]] static Result<std::unique_ptr<Agent>> create(AgentConfig config,
                                                             AgentOptions options);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // One collection and evaluation round.
  void tick();
  // SIGHUP: new targets and thresholds; histories of unchanged targets are kept.
  [[nodiscard]] Result<void> reload(AgentConfig config);
  // Asks running investigations to stop (they end with their report stored) and waits.
  void shutdown();

  std::string metrics_text() const;          // Prometheus exposition (agent_metrics.cpp)
  std::string reports_json() const;          // /api/reports
  std::shared_ptr<const ReportStore> report_store() const;  // the one in use (reload may replace it)
  std::vector<std::string> status_lines() const;
  Snapshot snapshot() const;
  AgentCounters counters() const;
  Layer1Info layer1() const;
  std::vector<sink::SinkStats> sink_stats() const;
  size_t running_investigations() const;
  // Waits until no investigation runs (tests); false on timeout.
  bool wait_idle(double timeout_s) const;
  const AgentConfig& config() const { return config_; }  // loop thread only

 private:
  struct ProcessState;
  struct CgroupState;
  struct TargetState;
  struct Running;

  Agent(AgentConfig config, AgentOptions options, std::shared_ptr<ReportStore> store);
  void build_targets(const std::vector<TargetSpec>& specs);
  std::vector<int> resolve(TargetState& t, const std::map<std::string, std::vector<int>>& by_comm,
                           const std::vector<int>& all_pids);
  std::vector<int> resolve_kubernetes(TargetState& t, const std::vector<int>& all_pids);
  // The container / Kubernetes identity of a process (cached by cgroup).
  const WorkloadLabels& workload_of(int pid);
  bool wants_smaps(const TargetState& t, const ProcessState* p) const;
  void watch_process(TargetState& t, const std::string& label, int pid,
                     std::vector<WatchedView>& out);
  LimitContext limit_for(const std::string& cgroup_dir);
  void consider(TargetState& t, ProcessState* p, const Evaluation& e,
                std::vector<TriggerReason>& active, const std::vector<TriggerReason>& fired);
  void start_investigation(TargetState& t, ProcessState& p, const std::vector<TriggerReason>& why,
                           const Evaluation& e);
  void reap_finished();
  void count_error(const std::string& kind);

  AgentConfig config_;
  DetectionParams params_;
  AgentOptions options_;
  std::shared_ptr<ReportStore> store_;  // replaced on reload under mu_
  std::shared_ptr<sink::Sinks> sinks_;  // null without sinks; replaced on reload under mu_
  std::string cgroup_root_;  // "" when the host has no cgroup2 mount
  metrics::ProcessCollector collector_;   // smaps_rollup reads
  std::unique_ptr<metrics::ProcessTable> table_;
  KubePods kube_;
  std::string node_name_;
  // Identity by cgroup id (iterator) or cgroup path (/proc), cleared when the pod files are
  // read again.
  std::unordered_map<uint64_t, WorkloadLabels> workload_by_id_;
  std::unordered_map<std::string, WorkloadLabels> workload_by_path_;
  std::vector<std::unique_ptr<TargetState>> targets_;
  std::optional<metrics::SystemSample> system_;
  std::map<std::string, std::optional<metrics::CgroupSample>> cgroup_cache_;  // this tick
  std::map<std::pair<int, uint64_t>, double> cooldown_until_;  // instance -> monotonic s
  std::vector<std::unique_ptr<Running>> running_;
  std::atomic<bool> stop_{false};
  const double agent_start_s_;

  mutable std::mutex mu_;  // guards snapshot_, counters_, running_count_
  Snapshot snapshot_;
  // The snapshot before the last, kept for its capacity: a round at 10,000 processes builds
  // megabytes of views, which a fresh vector would fault in (and copy as it grows) each time.
  std::vector<WatchedView> spare_watched_;
  AgentCounters counters_;
  Layer1Info layer1_;
  size_t running_count_ = 0;
};

// CLOCK_BOOTTIME seconds and the wall clock, to date process start times (common/clock.h).
using leakwatch::boot_seconds;
using leakwatch::unix_seconds;

// The node's name for labels: config.node_name, else $NODE_NAME, else the host name.
std::string node_name_for(const AgentConfig& config);

}  // namespace leakwatch::agent
