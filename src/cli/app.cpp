#include "cli/app.h"

#include <cstdio>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/agent_cmd.h"
#include "cli/calibrate_cmd.h"
#include "cli/growth_cmd.h"
#include "cli/growth_locator.h"
#include "cli/memleak_cmd.h"
#include "cli/memleak_investigator.h"
#include "cli/report_cmd.h"
#include "common/log.h"
#include "probe/trap_calibration.h"

namespace leakwatch::cli {

int run(int argc, char** argv) {
  CLI::App app{
      "leakwatch: find memory leaks in running processes with eBPF.\n"
      "  agent    always-on memory watch; investigates growing processes by itself\n"
      "  memleak  trace the allocator of a process (BCC memleak compatible)\n"
      "  growth   find where resident memory grows (page faults, mmap/brk; no uprobes)\n"
      "  report   re-render, compare and alert on saved reports\n"
      "  calibrate  measure what a uprobe hit costs on this host"};
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
  CalibrateOptions calibrate;
  CLI::App* calibrate_cmd = add_calibrate_subcommand(app, calibrate);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (memleak_cmd->parsed()) return run_memleak(memleak);
  if (growth_cmd->parsed()) return run_growth(growth);
  if (report_cmd->parsed()) return run_report(report);
  if (calibrate_cmd->parsed()) return run_calibrate(calibrate);
  if (agent_cmd->parsed()) {
    // The host's trap cost, for the investigations' overhead guard: measured now (the log
    // says what it is), again when the kernel or the CPU model changes.
    auto traps = std::make_shared<probe::TrapCalibrationCache>();
    if (!agent.once) {
      if (auto c = traps->get())
        log::warn("agent: uprobe cost measured at start: {}", c->summary());
      else
        log::warn("agent: uprobe cost not measured: {}", c.error().message);
    }
    return run_agent_command(
        agent,
        [traps] { return std::make_unique<MemleakInvestigator>([traps] { return traps->get(); }); },
        [] { return std::make_unique<TracepointGrowthLocator>(); });
  }
  return 2;
}

}  // namespace leakwatch::cli
