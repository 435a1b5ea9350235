// `leakwatch agent --config FILE.yaml [--once] [--foreground] [--listen HOST:PORT]
//                  [--proc-root DIR]`
//
// Wiring (src/cli/app.cpp):
//   cli::AgentCommandOptions agent_options;
//   CLI::App* agent_cmd = cli::add_agent_subcommand(app, agent_options);
//   ... app.parse(argc, argv) ...
//   if (agent_cmd->parsed())
//     return cli::run_agent_command(agent_options, investigator_factory, growth_factory);
// where the factories create the layer-3 Investigator (BPF memleak, in-process) and the
// layer-2 GrowthLocator (BPF tracepoints, in-process) of each investigation.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "agent/investigation.h"

namespace leakwatch::cli {

struct AgentCommandOptions {
  std::string config_path;
  bool once = false;        // one evaluation (two samples a second apart), status, exit
  bool foreground = false;  // print a status line per target every interval
  std::string listen;       // overrides the configuration's `listen` when set
  std::string proc_root = "/proc";  // the host's procfs (a container mounts it elsewhere)
};

// Registers the `agent` subcommand; `options` is filled when it is parsed.
CLI::App* add_agent_subcommand(CLI::App& app, AgentCommandOptions& options);

// Runs the agent until SIGTERM/SIGINT (SIGHUP reloads the configuration), or once.
// Exit codes: 0 success, 1 runtime error (unreachable target, cannot listen, ...),
// 2 bad configuration.  Must be called before the process starts other threads: it blocks
// SIGINT/SIGTERM/SIGHUP so that every thread it creates inherits the mask and the loop
// receives them synchronously.
int run_agent_command(const AgentCommandOptions& options,
                      agent::InvestigatorFactory investigator,
                      agent::GrowthLocatorFactory growth);

}  // namespace leakwatch::cli
