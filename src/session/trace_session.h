// One trace, one lifecycle.  Every trace leakwatch runs (memleak on processes, growth, kernel
// memleak) is a TraceSession, created by its own Create() from a plain options struct and
// driven by the one loop of session/driver.h, whoever the caller is (a command or one of
// the agent's investigations):
//
//   Create(options)   plan (targets, objects, sampling, unwinding), open, load, attach;
//                     a -c command is forked and held before exec
//   start()           the session clock starts; the held command is let go
//   collect()         drain rings and maps, follow new processes, symbolize: on a tick
//   report(final)     a snapshot report (each session type has its own report type)
//   stop()            stop the background work; the final report follows
//   ~TraceSession     detaches everything
//
// Thread-safety: a session is driven by one thread; sessions may run their own helper
// threads (they say so), stopped by stop() and the destructor.
#pragma once

#include <cstdint>

#include "common/result.h"

namespace leakwatch::session {

class ChildProcess;

class TraceSession {
 public:
  virtual ~TraceSession() = default;

  // Starts the clock and lets a held -c command exec.  Fails when the command cannot run.
  [[nodiscard]] virtual Result<void> start() = 0;
  // Periodic work; called at least every collect_every_ms() while the session runs.
  virtual void collect() = 0;
  // The longest the driver may wait between two collect() calls.
  virtual int collect_every_ms() const = 0;
  // The -c command is about to exit: its memory map is still readable.
  virtual void target_exiting() {}
  // Ends background work (drainer threads, event rings) before the final report.
  virtual void stop() {}

  // The traced process (0 for a cgroup or the kernel).
  virtual int target_pid() const = 0;
  // The command leakwatch started (-c), or nullptr.
  virtual ChildProcess* child() { return nullptr; }
};

}  // namespace leakwatch::session
