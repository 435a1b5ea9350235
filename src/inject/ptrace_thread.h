// ptrace of the threads of one process, for the length of an injection.
//
//   ThreadStop::Stop(pid)   PTRACE_SEIZE + PTRACE_INTERRUPT every thread in /proc/PID/task,
//                           again until a listing finds no thread it has not seized (threads
//                           created while the others stop), and waits for each to stop
//   ...                     registers read, stacks copied, one thread chosen and used
//   ~ThreadStop             PTRACE_DETACH of every thread still attached, handing back any
//                           signal a thread was stopped for (it is delivered as if we had
//                           never been there), and re-issuing a wait the stop ended with
//                           EINTR (epoll_wait, sigtimedwait...: see stub.h)
//
// A thread that does not stop before the deadline (blocked in vfork until its child execs,
// or in uninterruptible sleep) stays seized but is not used; the kernel detaches it when the
// tracing thread exits, which is why injections run on a thread of their own (injector.cpp).
//
// Thread-safety: ptrace requests must come from the thread that seized: use a ThreadStop on
// one thread only.
#pragma once

#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace leakwatch::inject {

using Clock = std::chrono::steady_clock;

struct StoppedThread {
  int tid = 0;
  bool attached = false;   // seized by us
  bool stopped = false;    // in a ptrace stop we can use
  bool signal_stop = false;  // stopped for a signal about to be delivered (signal_to_deliver)
  bool group_stop = false;   // stopped by a stopping signal (SIGSTOP & co.)
  int signal_to_deliver = 0; // handed back at detach
  user_regs_struct regs{};
  bool in_syscall() const { return static_cast<int64_t>(regs.orig_rax) >= 0; }
};

class ThreadStop {
 public:
  // Seizes and stops the threads of `pid`.  Fails only when no thread could be seized (the
  // first seize's error: EPERM, ESRCH ...); threads that did not stop in time are listed
  // with stopped = false.
  [[nodiscard]] static Result<std::unique_ptr<ThreadStop>> Stop(int pid, Clock::time_point deadline);
  ~ThreadStop();
  ThreadStop(const ThreadStop&) = delete;
  ThreadStop& operator=(const ThreadStop&) = delete;

  int pid() const { return pid_; }
  std::vector<StoppedThread>& threads() { return threads_; }
  StoppedThread* find(int tid);

  // Detaches `t` now; with `regs` set first when given (the state it resumes with).
  Result<void> detach(StoppedThread& t, const user_regs_struct* regs = nullptr);
  // Detaches every thread but `keep`, each resuming as the kernel would have resumed it
  // (release()).
  void detach_all_but(int keep);
  // Detaches `t`, re-issuing a wait the stop ended with -EINTR (stub.h, resume_regs).
  void release(StoppedThread& t);

  // Runs one system call in stopped thread `t` by single-stepping a `syscall` instruction at
  // `gadget` with the given number and arguments, then puts its registers back.  Signals
  // that arrive meanwhile are kept for delivery at detach.
  [[nodiscard]] Result<int64_t> remote_syscall(StoppedThread& t, uint64_t gadget, long nr,
                                               const std::vector<uint64_t>& args,
                                               Clock::time_point deadline);

  // Writes into the target's memory through /proc/PID/mem (which may write read-only private
  // pages of a process we trace).
  Result<void> write_memory(uint64_t addr, const void* data, size_t len);

 private:
  explicit ThreadStop(int pid) : pid_(pid) {}
  Result<void> seize_new_threads(bool& found_new);
  void wait_stops(Clock::time_point deadline);
  Result<int> wait_one(StoppedThread& t, Clock::time_point deadline);

  int pid_;
  std::vector<StoppedThread> threads_;
  int mem_fd_ = -1;
};

// Reads `len` bytes of the process's memory; fewer on a partial read.
size_t read_memory(int pid, uint64_t addr, void* out, size_t len);

}  // namespace leakwatch::inject
