// Test support: start a program with pipes, read its output line by line with a deadline,
// send signals, collect the exit status.  Used by the real-BPF and end-to-end tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace leakwatch::testing {

class Proc {
 public:
  // Starts argv[0] (PATH search) with stdin, stdout and stderr piped.
  explicit Proc(const std::vector<std::string>& argv);
  ~Proc();
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  pid_t pid() const { return pid_; }
  // Next stdout line (without '\n'), or nullopt on EOF/timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Reads stdout lines until one contains `needle`; returns it (nullopt on EOF/timeout).
  std::optional<std::string> wait_for(const std::string& needle,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void write(const std::string& s);
  void close_stdin();
  void signal(int sig);
  // Waits for exit (kills with SIGKILL after the timeout); returns the wait status.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Everything read from stdout so far / all of stderr (after wait()).
  const std::string& out() const { return out_all_; }
  const std::string& err() const { return err_; }

 private:
  void drain_stderr();
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, errfd_ = -1;
  std::string buf_, out_all_, err_;
  bool exited_ = false;
  int status_ = 0;
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out, err;
};
// Runs a command to completion (bounded by timeout) with stdin closed.
RunResult run_argv(const std::vector<std::string>& argv,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));

std::string fixture(const std::string& name);   // path of a fixture program
std::string leakwatch();                          // path of the leakwatch binary
std::string temp_path(const std::string& name);  // a fresh path in a per-test temp dir
bool have_bpf();                                  // root and BTF: real-BPF tests can run
int free_port();  // a loopback TCP port nothing listens on now (the kernel's ephemeral choice)

}  // namespace leakwatch::testing
