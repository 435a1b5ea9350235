// In-process sampling as the commands set it up: the environment that preloads the
// sampling library into a command, whether a program can load it, and its sampling settings
// in their three forms (the report's, the probe's, the library's counters).
#pragma once

#include <string>
#include <vector>

#include "bpf/preload_abi.h"
#include "common/result.h"
#include "probe/memleak_types.h"
#include "report/model.h"

namespace leakwatch::session {

// What the sampling library in a program samples (its counters say).
report::Sampling preload_sampling(const leakwatch_preload_stats& st);

// The probe's mode for a report's sampling mode.
probe::SampleMode probe_sample_mode(report::SamplingMode mode);

// "every allocation", "1 in N calls", "R = N bytes".
std::string describe_sampling(const report::Sampling& s);

// The value of --sample-bytes (a size with an optional K/M/G suffix): 1 .. 1T.
[[nodiscard]] Result<uint64_t> parse_sample_bytes(const std::string& text);

// Whether `executable` can load the library: dynamically linked, with glibc's loader.  The
// error says why not.
[[nodiscard]] Result<void> check_preloadable(const std::string& executable);

// The environment that makes a command run with `library` sampling as `sampling` says:
// LD_PRELOAD (the library first, then whatever LD_PRELOAD leakwatch has) and the rate.
std::vector<std::string> preload_environment(const std::string& library,
                                              const report::Sampling& sampling);

}  // namespace leakwatch::session
