// `leakwatch calibrate`: what a uprobe hit costs on this host (probe/trap_calibration.h),
// the figures the agent's overhead guard uses.
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

namespace leakwatch::cli {

struct CalibrateOptions {
  size_t rounds = 5;
  uint64_t calls = 300;
};

CLI::App* add_calibrate_subcommand(CLI::App& app, CalibrateOptions& options);
// 0, or 1 when the probes cannot be loaded or attached (one line on stderr).
int run_calibrate(const CalibrateOptions& options);

}  // namespace leakwatch::cli
