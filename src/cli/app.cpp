#include "cli/app.h"

#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/agent_cmd.h"
#include "cli/growth_cmd.h"
#include "cli/growth_locator.h"
#include "cli/memleak_cmd.h"
#include "cli/memleak_investigator.h"
#include "cli/report_cmd.h"

namespace leakwatch::cli {

int run(int argc, char** argv) {
  CLI::App app{
      "leakwatch: find memory leaks in running processes with eBPF.\n"
      "  agent    always-on memory watch; investigates growing processes by itself\n"
      "  memleak  trace the allocator of a process (BCC memleak compatible)\n"
      "  growth   find where resident memory grows (page faults, mmap/brk; no uprobes)\n"
      "  report   re-render, compare and alert on saved reports"};
  app.require_subcommand(1);
  // One line, like every other error of leakwatch (CLI11's default adds a second line).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return fmt::format("leakwatch: error: {} (run with --help for more information)\n",
                       e.what());
  });
  app.set_version_flag("--version", "leakwatch 0.1.0");

  MemleakOptions memleak;
  CLI::App* memleak_cmd = add_memleak_subcommand(app, memleak);
  GrowthOptions growth;
  CLI::App* growth_cmd = add_growth_subcommand(app, growth);
  AgentCommandOptions agent;
  CLI::App* agent_cmd = add_agent_subcommand(app, agent);
  ReportOptions report;
  CLI::App* report_cmd = add_report_subcommand(app, report);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (memleak_cmd->parsed()) return run_memleak(memleak);
  if (growth_cmd->parsed()) return run_growth(growth);
  if (report_cmd->parsed()) return run_report(report);
  if (agent_cmd->parsed())
    return run_agent_command(
        agent, [] { return std::make_unique<MemleakInvestigator>(); },
        [] { return std::make_unique<TracepointGrowthLocator>(); });
  return 2;
}

}  // namespace leakwatch::cli
