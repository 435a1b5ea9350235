// `leakwatch memleak -p PID --inject` against a running fixture (tests/e2e/memleak_inject_test.cpp
// and the stress test).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "report/model.h"
#include "support/process.h"

namespace leakwatch::testing {

struct InjectRun {
  report::Report report;
  bool parsed = false;
  int exit_code = -1;
  std::string err;  // leakwatch's stderr
};

// Runs leakwatch with -p target --inject -o 0 --format json and `flags` until it is attached,
// calls `drive` (which makes the target allocate), then stops it with SIGINT and reads its
// final report.
InjectRun inject_and_trace(Proc& target, const std::vector<std::string>& flags,
                           const std::function<void()>& drive);

// `[wrapper...] leakwatch memleak -p PID --inject --duration 1`, to completion.
RunResult run_leakwatch_inject(int pid, const std::vector<std::string>& wrapper = {});

// The target (inj_target, inj_cxx) answers "check" with "ok", then quits with its data intact
// and exit status 0.
void expect_target_intact(Proc& target);

// A refused injection left the target as it was: not traced, the library not mapped, and
// (for fixtures that answer "check") still working.
void expect_untouched(Proc& target, bool answers_check);

// The State letter of /proc/PID/status ('?' when unknown).
char process_state(int pid);

}  // namespace leakwatch::testing
