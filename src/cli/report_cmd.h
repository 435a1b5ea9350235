// `leakwatch report`: re-render saved reports (leakwatch JSON or BCC memleak text) in any
// format, diff two of them, and turn one into an alert with an exit status scripts can test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace leakwatch::cli {

struct ReportOptions {
  std::vector<std::string> files;  // inputs, "-" = stdin
  std::vector<std::string> diff;   // --diff BASE NEW (exactly two when given)
  std::string format = "text";
  std::string output;
  int top = 10;
  uint64_t sample_rate = 1;        // the N of BCC's -s N, for BCC text inputs
  double alert_threshold_mb = -1;  // < 0: no alert requested
  bool show_allocs = false;
};

// Registers the subcommand with its options bound to `opts`.
CLI::App* add_report_subcommand(CLI::App& app, ReportOptions& opts);

// Exit codes, also listed in --help: 0 ok (and no alert), 1 error (unreadable or invalid
// input, write failure), 2 usage error, 4 a medium alert, 5 a high alert.
int run_report(const ReportOptions& opts);

}  // namespace leakwatch::cli
