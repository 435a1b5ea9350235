// What must hold before leakwatch ptraces a process to load the sampling library, each
// refusal one line naming the reason; and where the process can see the library.
//
// Refused: ptrace forbidden (kernel.yama.ptrace_scope 3, or 1-2 without CAP_SYS_PTRACE), a
// process already traced or stopped, a thread id instead of a process, a vfork child (it
// shares its parent's memory until it execs), a statically linked program, a Go program
// (its runtime owns its threads and signals), a program on another C library than glibc
// (musl's loader cannot load a glibc library).  Seccomp is judged per thread once it is
// stopped (seccomp_check.h).
//
// Thread-safety: plain functions of /proc and the files they read.
#pragma once

#include <string>
#include <vector>

#include "common/procfs.h"
#include "common/result.h"

namespace leakwatch::inject {

// kernel.yama.ptrace_scope: -1 when Yama is not in the kernel (the file is missing).
int read_ptrace_scope(const std::string& path = "/proc/sys/kernel/yama/ptrace_scope");
bool have_cap_sys_ptrace();
// The rule: scope 3 forbids every attach; 1 and 2 need CAP_SYS_PTRACE for a process that is
// not our descendant (root has it unless it was dropped); 0 or no Yama: allowed.
[[nodiscard]] Result<void> check_ptrace_scope(int scope, bool cap_sys_ptrace);

// The process-level refusals above (state, tracer, thread id, vfork child, static, Go,
// C library), from /proc/PID and its executable.
[[nodiscard]] Result<void> check_target(int pid, const std::vector<MapEntry>& maps);

// Whether `exe` (a path leakwatch can open) is a Go program: a .go.buildinfo or
// .note.go.buildid section, or gccgo's libgo among the mappings.
bool is_go_program(const std::string& exe, const std::vector<MapEntry>& maps);

// The path under which `pid` sees `library`: leakwatch's own path when the process's mount
// namespace reaches that same file; otherwise a copy placed in the process's /tmp (through
// /proc/PID/root), reused by later injections of the same build.  `how` says which.
[[nodiscard]] Result<std::string> place_library(int pid, const std::string& library,
                                                std::string* how);

// Calls inside `maps`' objects that reach an allocator without going through a GOT slot:
// objects (other than libc and the allocator's own library) that define allocation
// functions themselves, whose internal calls are direct.  For -v.
std::vector<std::string> direct_allocator_calls(int pid, const std::vector<MapEntry>& maps);

}  // namespace leakwatch::inject
