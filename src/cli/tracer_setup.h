// What every tracing command (memleak, growth) checks and sets up before it attaches.
#pragma once

#include <string>

#include "common/result.h"

namespace leakwatch::cli {

// Root, and kernel BTF at /sys/kernel/btf/vmlinux or at `btf_path` (--btf).  `needs_root`
// is the whole message for a non-root user (it names the command and its capabilities).
[[nodiscard]] Result<void> check_tracing_environment(const std::string& needs_root,
                                                     const std::string& btf_path);

// Line-buffered stdout, the descriptor limit raised to its hard limit (the symbolizer keeps
// one per mapped object of every traced process), and the log level of -v / -vv.
void prepare_tracer_process(int verbose);

}  // namespace leakwatch::cli
