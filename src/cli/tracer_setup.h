// What every tracing command (memleak, growth) checks and sets up before it attaches.
#pragma once

#include <initializer_list>
#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace leakwatch::cli {

// Root, and kernel BTF at /sys/kernel/btf/vmlinux or at `btf_path` (--btf).  `needs_root`
// is the whole message for a non-root user (it names the command and its capabilities).
[[nodiscard]] Result<void> check_tracing_environment(const std::string& needs_root,
                                                     const std::string& btf_path);

// Line-buffered stdout, the descriptor limit raised to its hard limit (the symbolizer keeps
// one per mapped object of every traced process), and the log level of -v / -vv.
void prepare_tracer_process(int verbose);

// Blocks `signals` in this thread and returns a non-blocking signalfd that receives them:
// the command loop polls it next to its other descriptors.
[[nodiscard]] Result<UniqueFd> signals_to_fd(std::initializer_list<int> signals);

}  // namespace leakwatch::cli
