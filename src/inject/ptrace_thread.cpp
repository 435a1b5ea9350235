#include "inject/ptrace_thread.h"
#include "inject/stub.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <thread>

#include <fmt/format.h>

namespace leakwatch::inject {
namespace {

std::vector<int> list_tasks(int pid) {
  std::vector<int> tids;
  DIR* d = ::opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (!d) return tids;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    tids.push_back(std::atoi(e->d_name));
  }
  ::closedir(d);
  std::sort(tids.begin(), tids.end());
  return tids;
}

// Stopping signals: a stop for one of them under PTRACE_EVENT_STOP is a group-stop.
bool stopping_signal(int sig) {
  return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

}  // namespace

size_t read_memory(int pid, uint64_t addr, void* out, size_t len) {
  iovec local{out, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  return n < 0 ? 0 : static_cast<size_t>(n);
}

Result<std::unique_ptr<ThreadStop>> ThreadStop::Stop(int pid, Clock::time_point deadline) {
  std::unique_ptr<ThreadStop> s(new ThreadStop(pid));
  // Until a listing shows no new thread: the threads already stopped cannot create more, so
  // this ends once every thread that was being created has appeared.
  for (int round = 0; round < 1000; ++round) {
    bool found_new = false;
    if (auto r = s->seize_new_threads(found_new); !r) return std::unexpected(r.error());
    s->wait_stops(deadline);
    if (!found_new) break;
    if (Clock::now() >= deadline) break;
  }
  return s;
}

Result<void> ThreadStop::seize_new_threads(bool& found_new) {
  std::set<int> known;
  for (const auto& t : threads_) known.insert(t.tid);
  for (int tid : list_tasks(pid_)) {
    if (known.contains(tid)) continue;
    StoppedThread t;
    t.tid = tid;
    if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
      int e = errno;
      if (e == ESRCH) continue;  // exited meanwhile
      if (threads_.empty())
        return fail_errno(fmt::format("ptrace(PTRACE_SEIZE, {})", tid), e);
      continue;
    }
    t.attached = true;
    ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);
    threads_.push_back(t);
    found_new = true;
  }
  if (threads_.empty()) return fail("pid {} has no thread that could be seized", pid_);
  return {};
}

// One waitpid for `t` without blocking past the deadline: the stop status, 0 when it did not
// stop in time, -1 when it is gone.
Result<int> ThreadStop::wait_one(StoppedThread& t, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(t.tid, &status, __WALL | WNOHANG);
    if (r == t.tid) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        t.attached = false;
        return -1;
      }
      if (WIFSTOPPED(status)) return status;
    } else if (r < 0) {
      if (errno == EINTR) continue;
      t.attached = false;  // ECHILD: gone
      return -1;
    }
    if (Clock::now() >= deadline) return 0;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void ThreadStop::wait_stops(Clock::time_point deadline) {
  for (;;) {
    bool pending = false;
    for (auto& t : threads_) {
      if (!t.attached || t.stopped) continue;
      int status = 0;
      pid_t r = ::waitpid(t.tid, &status, __WALL | WNOHANG);
      if (r == t.tid && (WIFEXITED(status) || WIFSIGNALED(status))) {
        t.attached = false;
        continue;
      }
      if (r < 0 && errno != EINTR) {
        t.attached = false;
        continue;
      }
      if (r != t.tid || !WIFSTOPPED(status)) {
        pending = true;
        continue;
      }
      int sig = WSTOPSIG(status);
      int event = status >> 16;
      t.stopped = true;
      if (event == PTRACE_EVENT_STOP) {
        t.group_stop = stopping_signal(sig);
      } else if (event == 0) {
        // A signal was about to be delivered: keep it for the detach.
        t.signal_stop = true;
        t.signal_to_deliver = sig;
      }
      if (::ptrace(PTRACE_GETREGS, t.tid, nullptr, &t.regs) != 0) t.stopped = false;
    }
    if (!pending || Clock::now() >= deadline) return;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

StoppedThread* ThreadStop::find(int tid) {
  for (auto& t : threads_)
    if (t.tid == tid) return &t;
  return nullptr;
}

Result<void> ThreadStop::detach(StoppedThread& t, const user_regs_struct* regs) {
  // A thread that never stopped cannot be detached: it stays seized until this thread
  // exits (see the header).
  if (!t.attached || !t.stopped) return {};
  if (regs && ::ptrace(PTRACE_SETREGS, t.tid, nullptr, regs) != 0)
    return fail_errno(fmt::format("ptrace(PTRACE_SETREGS, {})", t.tid));
  if (::ptrace(PTRACE_DETACH, t.tid, nullptr,
               reinterpret_cast<void*>(static_cast<intptr_t>(t.signal_to_deliver))) != 0 &&
      errno != ESRCH)
    return fail_errno(fmt::format("ptrace(PTRACE_DETACH, {})", t.tid));
  t.attached = false;
  t.stopped = false;
  return {};
}

// A thread stopped in a wait that the stop ends with -EINTR resumes with the wait re-issued
// (stub.h, resume_regs): the program sees no trace of the stop.
void ThreadStop::release(StoppedThread& t) {
  if (t.stopped && !t.signal_stop && needs_restart(t.regs)) {
    user_regs_struct r = resume_regs(t.regs);
    (void)detach(t, &r);
    return;
  }
  (void)detach(t);
}

void ThreadStop::detach_all_but(int keep) {
  for (auto& t : threads_)
    if (t.tid != keep) release(t);
}

ThreadStop::~ThreadStop() {
  for (auto& t : threads_) release(t);
  if (mem_fd_ >= 0) ::close(mem_fd_);
}

Result<void> ThreadStop::write_memory(uint64_t addr, const void* data, size_t len) {
  if (mem_fd_ < 0) {
    mem_fd_ = ::open(fmt::format("/proc/{}/mem", pid_).c_str(), O_RDWR | O_CLOEXEC);
    if (mem_fd_ < 0) return fail_errno(fmt::format("open /proc/{}/mem", pid_));
  }
  const auto* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    ssize_t n = ::pwrite(mem_fd_, p, len, static_cast<off_t>(addr));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return fail_errno(fmt::format("writing pid {}'s memory at 0x{:x}", pid_, addr));
    }
    p += n;
    addr += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
  return {};
}

Result<int64_t> ThreadStop::remote_syscall(StoppedThread& t, uint64_t gadget, long nr,
                                           const std::vector<uint64_t>& args,
                                           Clock::time_point deadline) {
  user_regs_struct saved = t.regs;
  user_regs_struct call = saved;
  call.rip = gadget;
  call.rax = static_cast<uint64_t>(nr);
  // orig_rax -1: resuming from this stop must not restart a system call the thread was in.
  call.orig_rax = static_cast<uint64_t>(-1);
  unsigned long long* arg_regs[] = {&call.rdi, &call.rsi, &call.rdx, &call.r10, &call.r8, &call.r9};
  for (size_t i = 0; i < args.size() && i < 6; ++i) *arg_regs[i] = args[i];
  call.eflags &= ~0x100ull;  // TF: single-stepping is ptrace's business
  if (::ptrace(PTRACE_SETREGS, t.tid, nullptr, &call) != 0)
    return fail_errno(fmt::format("ptrace(PTRACE_SETREGS, {})", t.tid));
  user_regs_struct after{};
  for (;;) {
    if (::ptrace(PTRACE_SINGLESTEP, t.tid, nullptr, nullptr) != 0)
      return fail_errno(fmt::format("ptrace(PTRACE_SINGLESTEP, {})", t.tid));
    auto st = wait_one(t, deadline);
    if (!st) return std::unexpected(st.error());
    if (*st == -1) return fail("thread {} exited during the injection", t.tid);
    if (*st == 0) {
      ::ptrace(PTRACE_INTERRUPT, t.tid, nullptr, nullptr);
      (void)wait_one(t, Clock::now() + std::chrono::seconds(1));
      (void)::ptrace(PTRACE_SETREGS, t.tid, nullptr, &saved);
      return fail("a system call in thread {} did not return in time", t.tid);
    }
    if (::ptrace(PTRACE_GETREGS, t.tid, nullptr, &after) != 0)
      return fail_errno(fmt::format("ptrace(PTRACE_GETREGS, {})", t.tid));
    int sig = WSTOPSIG(*st);
    if (after.rip == gadget + 2 && sig == SIGTRAP) break;
    // Another signal arrived before the step: keep it for later, step again.
    if ((*st >> 16) == 0 && sig != SIGTRAP && t.signal_to_deliver == 0) t.signal_to_deliver = sig;
    if (after.rip != gadget)
      return fail("thread {} left the system call at 0x{:x}", t.tid, after.rip);
  }
  if (::ptrace(PTRACE_SETREGS, t.tid, nullptr, &saved) != 0)
    return fail_errno(fmt::format("ptrace(PTRACE_SETREGS, {})", t.tid));
  return static_cast<int64_t>(after.rax);
}

}  // namespace leakwatch::inject
