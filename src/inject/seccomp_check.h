// Whether a thread's seccomp filters let through the system calls an injection makes.
//
// A thread stopped by us has its classic-BPF filters read with PTRACE_SECCOMP_GET_FILTER
// (CAP_SYS_ADMIN, CONFIG_CHECKPOINT_RESTORE) and run here on each call the injection makes:
// leakwatch's two mmaps, then what dlopen and the library's initialisation do (openat, read,
// fstat, mmap of the segments, mprotect, close, futex, the sampled set's mmap...), with the
// arguments glibc passes.  Every filter runs and the most restrictive action wins, as in the
// kernel; anything but ALLOW or LOG refuses the injection before it starts.  Filters that
// cannot be read refuse it too.  Strict mode (1) allows nothing.
//
// Thread-safety: plain functions.
#pragma once

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace leakwatch::inject {

struct SyscallProbe {
  int nr;
  uint64_t args[6];
  const char* what;  // for the refusal message
};

// The calls an injection makes, with representative arguments.
const std::vector<SyscallProbe>& injection_syscalls();

// Runs one classic BPF seccomp program on `data`; returns its SECCOMP_RET_* value (a
// malformed program gives SECCOMP_RET_KILL_PROCESS, as the kernel would never load it).
uint32_t run_seccomp_filter(const std::vector<sock_filter>& prog, const seccomp_data& data);

// The filters' verdict on `calls` from instruction pointer `ip`: "" when all are allowed,
// else the first refused call and the action.
std::string judge_filters(const std::vector<std::vector<sock_filter>>& filters,
                          const std::vector<SyscallProbe>& calls, uint64_t ip);

// Seccomp mode of a thread (/proc/PID/task/TID/status): 0, 1 (strict), 2 (filter); -1 unknown.
int seccomp_mode(int pid, int tid);

// For a thread we have stopped: ok, or why the injection is refused.
[[nodiscard]] Result<void> check_seccomp(int pid, int tid, uint64_t ip);

}  // namespace leakwatch::inject
