// Clocks the layers share: CLOCK_MONOTONIC (the clock of BPF's bpf_ktime_get_ns, so
// ages computed from BPF timestamps use it) and the local wall time of report headers.
#pragma once

#include <cstdint>
#include <string>

namespace leakwatch {

// CLOCK_MONOTONIC in nanoseconds.
uint64_t monotonic_ns();
// A periodic schedule: true once `now` reaches `next`, which then moves one period on.
inline bool due(uint64_t now, uint64_t& next, uint64_t period) {
  if (now < next) return false;
  next = now + period;
  return true;
}
// Seconds (as doubles) of CLOCK_MONOTONIC, CLOCK_BOOTTIME (counts suspend: what process
// start times in /proc are relative to), CLOCK_REALTIME, and this thread's CPU time.
double monotonic_seconds();
double boot_seconds();
double unix_seconds();
double thread_cpu_seconds();
// Milliseconds since the Unix epoch (CLOCK_REALTIME).
int64_t unix_ms_now();
// "HH:MM:SS" in local time of a Unix time in milliseconds; "" if it cannot be converted.
std::string local_hhmmss(int64_t unix_ms);
// "HH:MM:SS" in local time now.
std::string local_hhmmss();

}  // namespace leakwatch
