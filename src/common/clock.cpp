#include "common/clock.h"

#include <time.h>

#include <chrono>
#include <ctime>

namespace leakwatch {

uint64_t monotonic_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

double clock_seconds(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

double monotonic_seconds() { return clock_seconds(CLOCK_MONOTONIC); }
double boot_seconds() { return clock_seconds(CLOCK_BOOTTIME); }
double unix_seconds() { return clock_seconds(CLOCK_REALTIME); }
double thread_cpu_seconds() { return clock_seconds(CLOCK_THREAD_CPUTIME_ID); }

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string local_hhmmss(int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm;
  if (!::localtime_r(&t, &tm)) return "";
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

std::string local_hhmmss() { return local_hhmmss(unix_ms_now()); }

}  // namespace leakwatch
