// Running `leakwatch memleak` on a fixture and reading its JSON report.
#pragma once

#include <string>
#include <vector>

#include "report/model.h"
#include "support/process.h"

namespace leakwatch::testing {

struct MemleakRun {
  RunResult result;
  report::Report report;
  bool parsed = false;
};

// Runs `leakwatch memleak -c "<command>" <extra...> --format json --output F` and parses F.
MemleakRun memleak_command(const std::string& command, const std::vector<std::string>& extra = {});

// Stacks whose innermost frame's function starts with `function`.
std::vector<const report::StackReport*> stacks_in(const report::Report& r, const std::string& function);

// Sum over stacks_in(): {sampled bytes, sampled count}.
struct Totals {
  double bytes = 0, count = 0, est_bytes = 0, est_count = 0, ci_lo = 0, ci_hi = 0;
};
Totals totals_in(const report::Report& r, const std::string& function);

std::string describe(const report::Report& r);  // for failure messages

}  // namespace leakwatch::testing
