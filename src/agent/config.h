// The agent's typed configuration, parsed once from YAML and passed by const reference.
// deploy/leakwatch.example.yaml documents every key; the block used by BCC memleak
// deployments (listen, reports_dir, environment, targets, memleak_sampling,
// overhead_budget_percent) is accepted as is, the other sections are optional.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/units.h"
#include "common/result.h"

namespace leakwatch::agent {

enum class Environment { kProduction, kStaging, kDevelopment, kCi };

// Longest investigation each environment allows, seconds (duration_limit is capped to it).
double environment_duration_cap_s(Environment env);
const char* to_string(Environment env);

struct TargetSpec {
  enum class Kind { kComm, kPid, kCgroup, kAll };
  Kind kind = Kind::kComm;
  std::string comm;    // kComm
  int pid = 0;         // kPid
  std::string cgroup;  // kCgroup: absolute cgroup v2 directory
  int line = 0;        // where it was configured, for messages

  // Stable label for metrics and status lines: "comm:x", "pid:1", "cgroup:/..", "all".
  std::string label() const;
};

struct TriggerConditions {
  std::optional<Threshold> memory_growth_rate;      // bytes/s of anonymous memory
  std::optional<Threshold> rss_increase_threshold;  // bytes of anonymous growth in a run
  std::optional<Threshold> oom_risk_score;          // [0, 1]
};

// Whether an investigation loads the sampling library into the suspect (memleak --inject):
// never; when the plain trace (allocator uprobes) goes over the overhead budget, instead of
// ending there; or always, before tracing.
enum class InjectPolicy { kNever, kOverBudget, kAlways };
const char* to_string(InjectPolicy p);

struct SamplingConfig {
  uint64_t default_sample_rate = 1000;   // 1 in N allocations (memleak -s N)
  uint64_t aggressive_sample_rate = 100; // used when the OOM-risk condition fired
  double duration_limit_s = 300;         // before the environment cap
  // Layer-2 step (page faults and mappings by stack) run before the allocation trace,
  // inside the same time box; 0 disables it.  AgentConfig::growth_step_s() caps it.
  double growth_seconds = 30;
  InjectPolicy inject = InjectPolicy::kNever;
};

struct MemleakSampling {
  bool enabled = false;
  TriggerConditions trigger_conditions;
  SamplingConfig sampling_config;
  double cooldown_s = 1800;              // per process, after an investigation ends
  int max_concurrent = 1;                // investigations running at once, all targets
};

// Detection tuning (src/agent/detection.h explains each figure).
struct DetectionConfig {
  double interval_s = 10;          // sampling period
  double rate_window_s = 120;      // Theil–Sen window of the growth rate
  double sustained_for_s = 300;    // growth must hold this long
  double baseline_window_s = 3600; // history the baseline rate and its spread come from
  double sigma = 2;                // "above baseline + sigma × spread"
  double min_spread_bytes_per_s = 1024;  // spread floor: noise below this is ignored
  double oom_horizon_s = 3600;     // risk = exp(-time_to_limit / horizon)
  double warmup_grace_s = 0;       // ignore a process's first seconds entirely
  bool read_smaps = true;          // PSS/USS (smaps_rollup); false = status counters only
};

struct ReportsConfig {
  size_t max_count = 100;          // stored investigations kept
  double max_age_s = 7 * 86400;    // older ones are pruned
};

struct AgentConfig {
  std::string listen = "127.0.0.1:9464";  // "" or "off": no HTTP endpoint
  std::string reports_dir = "./leakwatch-reports";
  Environment environment = Environment::kProduction;
  std::vector<TargetSpec> targets;
  MemleakSampling memleak_sampling;
  double overhead_budget_percent = 10;
  DetectionConfig detection;
  ReportsConfig reports;

  // duration_limit capped by the environment: the whole investigation's time box.
  double investigation_duration_s() const;
  // The growth step's share of that box: growth_seconds, at most half of it, so that the
  // allocation trace (which gets the rest) always has at least half.  0: no growth step.
  double growth_step_s() const;
};

struct ListenAddress {
  std::string host;
  int port = 0;
};

// "127.0.0.1:9464", "[::1]:9464", "localhost:0".
[[nodiscard]] Result<ListenAddress> parse_listen(std::string_view text);

// Errors read "SOURCE:LINE: KEY: expected ..., got ...".
[[nodiscard]] Result<AgentConfig> parse_config(std::string_view yaml_text,
                                               std::string_view source = "config");
[[nodiscard]] Result<AgentConfig> load_config(const std::string& path);

}  // namespace leakwatch::agent
