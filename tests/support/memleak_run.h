// Running `leakwatch memleak` on a fixture and reading its JSON report.
#pragma once

#include <gtest/gtest.h>

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

// Runs `leakwatch memleak -c "<command>" -o 0 <extra...> --format json --output F` and parses
// F.  `env` ("NAME=value") is added to leakwatch's environment, which the command inherits
// (that is how a -c command gets LD_PRELOAD).
MemleakRun memleak_command(const std::string& command, const std::vector<std::string>& extra = {},
                           const std::vector<std::string>& env = {});

// Stacks whose innermost frame's function starts with `function`.
std::vector<const report::StackReport*> stacks_in(const report::Report& r, const std::string& function);

// Sum over stacks_in(): {sampled bytes, sampled count}.
struct Totals {
  double bytes = 0, count = 0, est_bytes = 0, est_count = 0, ci_lo = 0, ci_hi = 0;
};
Totals totals_in(const report::Report& r, const std::string& function);

std::string describe(const report::Report& r);  // for failure messages

// Expects the stacks whose innermost frame is exactly `fn` (a C name, or a C++ name with its
// parameters: "f" matches "f(int)", not "f_other") to hold exactly `count` allocations of
// `each` bytes (sampled figures: the recorded ones).
void expect_exact_leak(const report::Report& r, const std::string& fn, double count, double each);

// ml_functions' leaks, one per C allocation function (tests/fixtures/ml_functions.c).
void expect_ml_functions_leaks(const report::Report& r);

// Base of the tests that trace with real BPF: skipped, saying why, without root and BTF.
class BpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  }
};

}  // namespace leakwatch::testing
