// `leakwatch memleak -p PID --inject` (and the agent's investigations): makes sure the
// process runs with the sampling library, loading it through ptrace when it has none
// (src/inject), after which the in-process -p path applies unchanged.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "report/model.h"

namespace leakwatch::cli {

struct InjectStep {
  bool injected = false;            // loaded now (false: it was there already)
  report::Sampling sampling;        // what the library samples
  std::vector<std::string> notes;   // for the report: how the process came to be traced
};

// `wanted`: the sampling asked for (the flags; exact without any).  `sampling_given`: the
// flags set one, so a library already sampling otherwise is worth a warning.
[[nodiscard]] Result<InjectStep> ensure_injected(int pid, const report::Sampling& wanted,
                                                 bool sampling_given, bool verbose);

}  // namespace leakwatch::cli
