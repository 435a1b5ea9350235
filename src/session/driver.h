// The one loop that runs a TraceSession, for the commands and the agent alike:
//
//   start() ─▶ ┌ wait (poll: stop signals, the target's pidfd; at most until the next
//              │       report, the end of --duration, the session's collect tick, 100 ms
//              │       when another thread may ask to stop)
//              │ collect()
//              │ interval report when due ─ then the loop polls again, so a report that
//              │       takes longer than the interval never keeps signals from being read
//              └ stop when: duration, count, SIGINT/SIGTERM, the stop flag, the -c
//                command's exit, the -p process's exit, the guard's reason
//   ─▶ stop() ─▶ (the caller's final report)
//
// Thread-safety: drive() runs on the calling thread; `stop` may be set from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/exit_status.h"
#include "common/fd.h"
#include "common/result.h"
#include "session/trace_session.h"

namespace leakwatch::session {

struct DriveOptions {
  double interval_s = 0;   // between interval reports; <= 0: none
  int64_t count = -1;      // reports in all, the final one included (BCC's count); -1: no limit
  double duration_s = 0;   // stop after this long; 0: no limit
  int signal_fd = -1;      // a signalfd of SIGINT/SIGTERM (catch_stop_signals), or -1
  // Set by another thread to stop the session; checked at least every 100 ms.
  const std::atomic<bool>* stop = nullptr;
  // Asked on every tick: a non-empty answer stops the session for that reason (the
  // agent's overhead guard).
  std::function<std::string()> guard;
};

enum class StopCause {
  kDuration,       // --duration or the investigation's time box
  kCount,          // the last of `count` reports is due: it is the final one
  kInterrupted,    // SIGINT
  kTerminated,     // SIGTERM
  kStopRequested,  // the stop flag
  kCommandExited,  // the -c command exited
  kCommandKilled,  // the -c command was killed by a signal
  kTargetExited,   // the -p process exited
  kGuard,          // the guard gave a reason
  kError,          // start() or the wait failed
};
const char* to_string(StopCause cause);

struct DriveOutcome {
  StopCause cause = StopCause::kDuration;
  std::string detail;   // the guard's reason, the error, the command's exit status
  int64_t reports = 0;  // interval reports emitted
  bool started = false; // start() succeeded (else there is nothing to report)
};

// The process exit status of a command whose session ended this way: 0 when stopped
// (signal, duration, count, the command exiting normally), 3 when the target went away
// abnormally (a -p process exited, the -c command was killed), 1 on errors.
int exit_status_of(StopCause cause);

// Runs `s` from start() to stop(); `on_interval` builds and emits an interval report.
DriveOutcome drive(TraceSession& s, const DriveOptions& opts,
                   const std::function<void()>& on_interval);

// Blocks SIGINT, SIGTERM, SIGCHLD, SIGHUP and SIGPIPE in this thread (a -c command gets
// them unblocked) and returns a signalfd receiving them; a command calls it before it
// creates its session, so that Ctrl-C during setup is not lost either.
[[nodiscard]] Result<UniqueFd> catch_stop_signals();

// drive() for a command: logs how it ended, then writes the final report with `finish`
// (always, whatever ended the session), and returns the command's exit status.
int run_command(TraceSession& s, const DriveOptions& opts, const std::function<void()>& on_interval,
                const std::function<Result<void>()>& finish);

}  // namespace leakwatch::session
