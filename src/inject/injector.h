// Loading libleakwatch-preload.so into a running process (`leakwatch memleak -p PID
// --inject`).
//
//   checks          ptrace_scope, tracer, state, static/Go/musl, vfork child (target_checks.h)
//   placement       the library path the process sees (a copy in its /tmp if needed)
//   stop            every thread seized and stopped (ThreadStop)          <- the pause begins
//   safe point      a thread whose unwound stack is outside the allocator, the loader,
//                   signal handlers... (SafePointJudge); none: detach all, retry a little
//                   later; seccomp filters of that thread judged (seccomp_check.h)
//   the others      detached: they run on, so a lock one of them holds is released as usual
//                                                                         <- the pause ends
//   two mmaps       run in the chosen thread (code page, read-write area)
//   the stub        written, the thread pointed at it and detached: it loads the library,
//                   calls its init (GOT rewritten, sampling on), restores every register
//                   and resumes where it was, on its own (stub.h)
//   wait            for the stub's "done" in its control block, read the result
//
// On any failure before the thread is started the registers it was stopped with are put
// back and every thread is detached: the process carries on as it was.  Once started, the
// stub completes without leakwatch; a timeout only means leakwatch stops waiting.
//
// Thread-safety: inject_library may be called from any thread; the ptrace work runs on a
// thread of its own (the kernel detaches whatever that thread still traces when it exits).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bpf/preload_abi.h"
#include "common/result.h"

namespace leakwatch::inject {

struct InjectOptions {
  std::string library;        // libleakwatch-preload.so as leakwatch sees it
  uint64_t sample_bytes = 1;  // R; 1 = every allocation
  uint64_t sample_calls = 0;  // > 1: 1 call in N instead
  uint64_t seed = 0;          // tests: fixed random streams
  std::chrono::milliseconds stop_timeout{300};   // for the threads to stop, per attempt
  std::chrono::milliseconds total_timeout{10000};  // finding a safe point, and the load
  int max_attempts = 40;
};

struct InjectOutcome {
  std::string path;          // the library as the process sees it
  std::string placement;     // how it got there
  int tid = 0;               // the thread that loaded it
  int attempts = 0;          // stops until a safe point was found
  int threads = 0;           // threads stopped in the last attempt
  double pause_ms = 0;       // all threads stopped (last attempt)
  double stop_ms = 0;        // of which: until every thread had stopped
  double judge_ms = 0;       // of which: unwinding and judging stacks
  double thread_pause_ms = 0;  // the loading thread stopped (stop to stub start)
  double load_ms = 0;        // the stub's run: dlopen and the library's init
  std::vector<std::string> skipped;  // threads passed over, with why (last attempt)
  leakwatch_inject_result result{};  // what the library's init rewrote
};

// Loads the library into `pid`; a one-line error when it cannot (the process unchanged).
[[nodiscard]] Result<InjectOutcome> inject_library(int pid, const InjectOptions& options);

}  // namespace leakwatch::inject
