// The tracing filesystem, where the kernel lists its tracepoints and libbpf finds their ids.
#pragma once

#include <string>

namespace leakwatch::probe {

// Makes sure tracefs is reachable at /sys/kernel/tracing or /sys/kernel/debug/tracing:
// when neither has an events/ folder, mounts tracefs at /sys/kernel/tracing (systemd does
// at boot, minimal hosts and containers often do not).  Returns where it is, "" when it is
// not and cannot be mounted (not root, no CONFIG_TRACING, a read-only /sys); tracepoints
// cannot be attached then, and the attach error names the tracepoint.
std::string ensure_tracefs();

// Whether the kernel has the tracepoint category:name (under tracefs's events/).
bool tracepoint_exists(const std::string& category, const std::string& name);

}  // namespace leakwatch::probe
