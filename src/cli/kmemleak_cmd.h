// `leakwatch memleak` without -p, -c or --cgroup: kernel-mode memleak (session/
// kernel_session.h), with BCC's interval reports and the same report writers as user mode.
#pragma once

#include "cli/memleak_cmd.h"
#include "report/render.h"
#include "session/memleak_session.h"

namespace leakwatch::cli {

// Runs until Ctrl-C/SIGTERM, --duration or count; prints BCC's interval reports and the
// final report.  `validated` holds the flags memleak_cmd.cpp has checked (its filter and
// report options apply here too).  Returns the exit status (0 ok, 1 error).
int run_kernel_memleak(const MemleakOptions& opts, const session::MemleakSessionOptions& validated,
                       report::Format format);

}  // namespace leakwatch::cli
