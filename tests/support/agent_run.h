// The agent as a process, watched from outside the way an operator would: its
// configuration written to a file, its Prometheus metrics read over HTTP.
#pragma once

#include <memory>
#include <string>

#include "support/process.h"

namespace leakwatch::testing {

// A loopback port nothing listens on right now (the kernel's choice for an ephemeral bind).
int free_port();

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

// SIGTERM, then the exit status (-1 when it did not exit normally).
int stop_agent(AgentRun& agent);

}  // namespace leakwatch::testing
