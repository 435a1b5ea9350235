// Running `leakwatch agent` in the end-to-end tests: a configuration that investigates a
// growing process quickly, and the wait for its first stored investigation; or the agent as a
// process watched from outside the way an operator would, its Prometheus metrics read over HTTP.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "support/process.h"

namespace leakwatch::testing {

// Writes dir/agent.yaml: `pid` watched every 200 ms, an investigation once it grows faster
// than 10 MB/min for 1 s (a 2 s growth step, then the allocation trace for the rest of
// `duration_s`, every call traced), reports in dir/reports, HTTP on `listen` ("off" for
// none).  Returns the file's path.
std::string write_agent_config(const std::string& dir, int pid, const std::string& listen,
                               int duration_s);

// index.json's array under `reports` once it names an investigation (an investigation enters
// it only when all its files are complete); an empty array after `timeout`.
nlohmann::json wait_for_stored(const std::string& reports, std::chrono::seconds timeout);

// Sum of every series of `name` in a Prometheus text exposition (-1 when absent).
double metric_sum(const std::string& text, const std::string& name);

struct AgentRun {
  std::string dir;      // the test's directory (configuration)
  std::string reports;  // reports_dir
  int port = 0;
  std::unique_ptr<Proc> proc;

  // "" when the agent does not answer.  Also drains the agent's stderr into proc->err().
  std::string metrics() const;
  double metric(const std::string& name) const { return metric_sum(metrics(), name); }
};

// Starts `leakwatch agent` with listen, reports_dir (a fresh one unless given) and
// environment: ci, then `body` (the rest of the YAML), and waits until /metrics answers.
AgentRun start_agent(const std::string& body, const std::string& reports_dir = "");

// The rest of an agent configuration (for start_agent) under which `pid`, growing through
// malloc at a few hundred KiB/s, triggers again as soon as an investigation ends: a trigger
// above 64 KB/s held 0.5 s, no cooldown, allocation traces of `duration_limit_s` at 1 in
// 100, no growth step; keeping `max_reports` investigations.
std::string retriggering_config(int pid, double duration_limit_s, int max_reports);

// SIGTERM, then the exit status (-1 when it did not exit normally).
int stop_agent(AgentRun& agent);

}  // namespace leakwatch::testing
