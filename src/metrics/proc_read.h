// Small-file reads for /proc and cgroupfs.  These files are generated on read, so they are
// read with one open/read loop into a caller-owned buffer that is reused between samples:
// no stream objects and no allocation once the buffer has grown.  Thread-safe (no state).
#pragma once

#include <string>
#include <string_view>

#include "common/procfs.h"
#include "common/result.h"

namespace leakwatch::metrics {

// Reads the whole file at `path` into `buf` and returns a view of it (common/procfs.h).
// On failure the Error carries errno (ENOENT/ESRCH: gone, EACCES/EPERM: not permitted).
using leakwatch::read_proc_file;

// True when an error means the process or cgroup no longer exists.
bool is_gone(const Error& e);

}  // namespace leakwatch::metrics
