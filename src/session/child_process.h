// A command started by leakwatch (-c): forked and held before exec until the probes are
// attached, then released.  It is traced with ptrace only for its exit event, so that the
// memory map can be read while it still exists (a short-lived command is symbolized after
// it is gone); every other stop is passed through unchanged.
//
// Thread-safety: not thread-safe; used by the thread that created it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace leakwatch::session {

// Splits a -c command line into words (shell-like quoting, no expansion).
[[nodiscard]] Result<std::vector<std::string>> split_command(const std::string& command);
// A command's environment words, taken out of it: leading NAME=value words (as a shell reads
// them) and `env [-u NAME] [NAME=value]... [--]` in front of the program.  So the program
// itself is the traced target, planned with that environment (an allocator given with
// LD_PRELOAD is probed), not env.  A command using env's other options (-i, -C, -S, ...), or
// with no program after the words, is left whole.
struct CommandEnvironment {
  std::vector<std::string> argv;     // the program and its arguments
  std::vector<std::string> changes;  // in order: "NAME=value" sets, "NAME" unsets
};
[[nodiscard]] CommandEnvironment take_environment(std::vector<std::string> words);
// take_environment, its words applied to this process's environment, which the command
// inherits and its allocator plan reads (LD_PRELOAD, LD_LIBRARY_PATH, PATH).  For the
// command-line edge: leakwatch itself starts no other program.
[[nodiscard]] std::vector<std::string> apply_command_environment(std::vector<std::string> words);
// Finds an executable on PATH (or checks a path with a slash).
[[nodiscard]] Result<std::string> resolve_executable(const std::string& name);

class ChildProcess {
 public:
  // Forks; the child waits until release().  SIGINT/SIGTERM/SIGCHLD are unblocked in the
  // child before exec whatever the parent's mask.  The child gets SIGKILL when the thread
  // that called Spawn exits (PR_SET_PDEATHSIG: leakwatch killed by any signal, SIGKILL
  // included), so call it from a thread that lives as long as the trace.  `env` entries ("NAME=value") are added to
  // the child's environment, replacing a variable of the same name.
  [[nodiscard]] static Result<std::unique_ptr<ChildProcess>> Spawn(
      const std::string& path, const std::vector<std::string>& argv,
      const std::vector<std::string>& env = {});
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // Lets the child exec; fails when exec failed.
  [[nodiscard]] Result<void> release();
  // Handles pending wait events without blocking.  `on_exiting` runs when the child is
  // about to exit (its memory map still readable).  Returns true once it has exited.
  bool poll(const std::function<void()>& on_exiting);
  bool exited() const { return exited_; }
  int exit_status() const { return status_; }  // as from waitpid
  // Kills (SIGKILL) and reaps the child if it still runs.
  void kill_and_reap();

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  std::string path_;
  UniqueFd go_;     // write end: the child execs when it reads one byte
  UniqueFd error_;  // read end: the child writes errno here when exec fails
  bool exited_ = false;
  bool traced_ = false;
  int status_ = 0;
};

}  // namespace leakwatch::session
