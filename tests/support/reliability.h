// Test support for the fault and load tests (tests/e2e/faults_test.cpp,
// tests/e2e/field_hazards_test.cpp, tests/stress): resources of a live process, the BPF
// objects a process holds, and figures recorded for RELIABILITY.md.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>

namespace leakwatch::testing {

// What a process holds: resident memory, open descriptors, mappings.
struct ProcResources {
  uint64_t rss_bytes = 0;  // VmRSS
  size_t fds = 0;          // entries of /proc/PID/fd
  size_t mappings = 0;     // lines of /proc/PID/maps
  bool alive = false;
};
ProcResources resources_of(pid_t pid);

// BPF programs, links and maps a process holds through its descriptors, from
// /proc/PID/fdinfo (prog_id:, link_id:, map_id: lines).  Only that process's own objects:
// another tracer running at the same time does not change them.
struct BpfHeld {
  std::set<uint32_t> progs, links, maps;
  bool empty() const { return progs.empty() && links.empty() && maps.empty(); }
};
BpfHeld bpf_held_by(pid_t pid);

// Whether the kernel still has the object with this id (BPF_*_GET_FD_BY_ID).
// The sanitizer build (make test-asan): ASan's redzones and its quarantine of freed memory
// (256 MiB by default) make bounds on leakwatch's resident memory meaningless there;
// LeakSanitizer checks for leaks at every exit instead.
inline constexpr bool kSanitizedBuild = LEAKWATCH_SANITIZED;

bool bpf_prog_exists(uint32_t id);
bool bpf_link_exists(uint32_t id);

// Polls `done` every 50 ms until it holds or `timeout` passes; returns its last value.
bool eventually(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A figure for RELIABILITY.md: recorded as a property of the running test (it lands in
// --gtest_output JSON, which scripts/reliability-report.py reads) and printed.
void record_figure(const std::string& key, double value);
void record_figure(const std::string& key, const std::string& value);

// How many times longer the stress variants run (LEAKWATCH_STRESS_SCALE, default 1).
double stress_scale();

}  // namespace leakwatch::testing
