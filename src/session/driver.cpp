#include "session/driver.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/procfs.h"
#include "session/child_process.h"

namespace leakwatch::session {
namespace {

// While another thread may ask the session to stop, the wait is never longer than this.
constexpr int kStopCheckMs = 100;

// Nanoseconds in `s` seconds, saturated (a huge --duration means "no limit" in practice).
uint64_t seconds_to_ns(double s) {
  if (!(s > 0)) return 0;
  if (s >= 1e9) return UINT64_MAX / 2;
  return static_cast<uint64_t>(s * 1e9);
}

}  // namespace

const char* to_string(StopCause cause) {
  switch (cause) {
    case StopCause::kDuration: return "duration reached";
    case StopCause::kCount: return "count reached";
    case StopCause::kInterrupted: return "interrupted";
    case StopCause::kTerminated: return "terminated";
    case StopCause::kStopRequested: return "stopped";
    case StopCause::kCommandExited: return "command exited";
    case StopCause::kCommandKilled: return "command killed";
    case StopCause::kTargetExited: return "target exited";
    case StopCause::kGuard: return "stopped by the guard";
    case StopCause::kError: return "error";
  }
  return "?";
}

int exit_status_of(StopCause cause) {
  switch (cause) {
    case StopCause::kCommandKilled:
    case StopCause::kTargetExited: return kExitTargetGone;
    case StopCause::kError: return kExitError;
    default: return kExitOk;
  }
}

Result<UniqueFd> catch_stop_signals() {
  // SIGCHLD wakes the loop for the -c command's stops and exit; SIGHUP and SIGPIPE are
  // read and ignored (a closed terminal or pipe must not kill the trace before its report).
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGPIPE}) sigaddset(&set, sig);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return fail_errno("sigprocmask");
  UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd.valid()) return fail_errno("signalfd");
  return fd;
}

DriveOutcome drive(TraceSession& s, const DriveOptions& o, const std::function<void()>& on_interval) {
  DriveOutcome out;
  if (auto r = s.start(); !r) {
    out.cause = StopCause::kError;
    out.detail = r.error().message;
    return out;
  }
  out.started = true;
  ChildProcess* child = s.child();
  // A -p process is watched through its pidfd (readable when it exits).
  UniqueFd pid_fd;
  if (!child && s.target_pid() > 0)
    pid_fd.reset(static_cast<int>(::syscall(SYS_pidfd_open, s.target_pid(), 0)));

  const uint64_t start_ns = monotonic_ns();
  const uint64_t interval_ns = seconds_to_ns(o.interval_s);
  const uint64_t duration_ns = seconds_to_ns(o.duration_s);
  const uint64_t end_ns = duration_ns ? start_ns + duration_ns : 0;
  uint64_t next_report = interval_ns ? start_ns + interval_ns : 0;

  auto stop_with = [&](StopCause c, std::string detail = {}) {
    out.cause = c;
    out.detail = std::move(detail);
  };

  for (;;) {
    uint64_t now = monotonic_ns();
    if (end_ns && now >= end_ns) {
      stop_with(StopCause::kDuration);
      break;
    }
    if (next_report && now >= next_report) {
      if (o.count > 0 && out.reports + 1 >= o.count) {
        stop_with(StopCause::kCount);
        break;  // the last report is the final one
      }
      if (on_interval) on_interval();
      out.reports++;
      // A report that took longer than the interval is not followed by another one at
      // once: the next is an interval after it ended.  Either way the loop goes on to the
      // wait below, which reads signals and the target's exit.
      now = monotonic_ns();
      next_report += interval_ns;
      if (next_report <= now) next_report = now + interval_ns;
    }

    uint64_t wake = UINT64_MAX;
    if (next_report) wake = std::min(wake, next_report);
    if (end_ns) wake = std::min(wake, end_ns);
    int64_t timeout_ms = wake == UINT64_MAX ? 1000 : static_cast<int64_t>((wake - std::min(wake, now) + 999999) / 1000000);
    timeout_ms = std::min<int64_t>(timeout_ms, std::max(1, s.collect_every_ms()));
    if (o.stop) timeout_ms = std::min<int64_t>(timeout_ms, kStopCheckMs);

    pollfd fds[2] = {{o.signal_fd, POLLIN, 0}, {pid_fd.get(), POLLIN, 0}};
    int r = ::poll(fds, 2, static_cast<int>(timeout_ms));  // a negative descriptor is ignored
    if (r < 0 && errno != EINTR) {
      stop_with(StopCause::kError, fmt::format("poll: {}", std::strerror(errno)));
      break;
    }
    s.collect();

    bool stopped = false;
    if (r > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si;
      while (::read(o.signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGINT) stop_with(StopCause::kInterrupted), stopped = true;
        else if (si.ssi_signo == SIGTERM) stop_with(StopCause::kTerminated), stopped = true;
      }
    }
    if (!stopped && child && child->poll([&] { s.target_exiting(); })) {
      int st = child->exit_status();
      if (WIFSIGNALED(st))
        stop_with(StopCause::kCommandKilled,
                  fmt::format("the command was killed by signal {} ({})", WTERMSIG(st),
                              strsignal(WTERMSIG(st))));
      else
        stop_with(StopCause::kCommandExited,
                  fmt::format("the command exited with status {}", WEXITSTATUS(st)));
      stopped = true;
    }
    if (!stopped && pid_fd.valid() && r > 0 && (fds[1].revents & POLLIN)) {
      stop_with(StopCause::kTargetExited,
                fmt::format("pid {} exited during tracing; final report follows", s.target_pid()));
      stopped = true;
    }
    if (!stopped && !pid_fd.valid() && !child && s.target_pid() > 0 &&
        !process_exists(s.target_pid())) {
      stop_with(StopCause::kTargetExited,
                fmt::format("pid {} exited during tracing; final report follows", s.target_pid()));
      stopped = true;
    }
    if (!stopped && o.stop && o.stop->load()) {
      stop_with(StopCause::kStopRequested);
      stopped = true;
    }
    if (!stopped && o.guard) {
      if (std::string why = o.guard(); !why.empty()) {
        stop_with(StopCause::kGuard, std::move(why));
        stopped = true;
      }
    }
    if (stopped) break;
  }
  s.stop();
  return out;
}

int run_command(TraceSession& s, const DriveOptions& opts, const std::function<void()>& on_interval,
                const std::function<Result<void>()>& finish) {
  DriveOutcome out = drive(s, opts, on_interval);
  if (!out.started) {
    log::error("{}", out.detail);
    return kExitError;
  }
  switch (out.cause) {
    case StopCause::kTargetExited:
    case StopCause::kCommandKilled:
    case StopCause::kError: log::error("{}", out.detail); break;
    case StopCause::kCommandExited: log::info("{}", out.detail); break;
    default: log::debug("stopping: {}", to_string(out.cause)); break;
  }
  if (auto w = finish(); !w) {
    log::error("{}", w.error().message);
    return kExitError;
  }
  return exit_status_of(out.cause);
}

}  // namespace leakwatch::session
