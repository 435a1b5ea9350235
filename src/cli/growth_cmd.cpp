#include "cli/growth_cmd.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "cli/child_process.h"
#include "cli/inprocess.h"
#include "cli/option_checks.h"
#include "cli/output.h"
#include "cli/tracer_setup.h"
#include "common/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/proc_maps.h"
#include "probe/preload_plan.h"
#include "report/growth_writer.h"
#include "tracker/frame_resolver.h"
#include "tracker/growth_tracker.h"

namespace leakwatch::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitTargetGone = 3;
constexpr int kDrainTickMs = 100;
constexpr uint64_t kResolveEveryNs = 1000000000;

// Everything validated and derived from the flags before anything is attached.
struct Plan {
  report::Format format = report::Format::kText;
  probe::StackWalker walker = probe::StackWalker::kFramePointers;
  report::Sampling preload_sampling;  // --inprocess: what the preloaded library samples
};

// Bounds of the time options: beyond them the nanosecond arithmetic of the loop overflows.
constexpr double kMaxSeconds = 366.0 * 86400;
// Bytes of kernel memory a stack map entry takes (127 frames, key, element header).
constexpr uint64_t kStackEntryBytes = 127 * 8 + 8 + 64;

Result<Plan> validate(const GrowthOptions& o) {
  Plan p;
  if (o.pid_given && o.pid <= 0)
    return fail("-p: not a valid pid: {} (give the pid of the process to trace)", o.pid);
  if (o.command_given) {
    if (auto words = split_command(o.command); !words) return std::unexpected(words.error());
  }
  int targets = (o.pid != 0) + !o.command.empty() + !o.cgroup.empty();
  if (targets == 0) return fail("give a target: -p PID, -c COMMAND or --cgroup PATH");
  if (targets > 1) return fail("-p, -c and --cgroup cannot be used together");
  if (o.pid < 0) return fail("-p: not a valid pid: {}", o.pid);
  if (!(o.interval_s > 0)) return fail("interval must be positive, got {}", o.interval_s);
  if (o.interval_s > kMaxSeconds)
    return fail("interval: at most {} seconds (366 days), got {}", kMaxSeconds, o.interval_s);
  if (o.count == 0 || o.count < -1) return fail("count must be positive, got {}", o.count);
  if (!(o.duration_s >= 0)) return fail("--duration: must be >= 0, got {}", o.duration_s);
  if (o.duration_s > kMaxSeconds)
    return fail("--duration: at most {} seconds (366 days), got {}", kMaxSeconds, o.duration_s);
  if (o.sample_faults == 0) return fail("--sample-faults: must be >= 1");
  if (o.top <= 0) return fail("-T: must be positive, got {}", o.top);
  if (o.max_stacks == 0) return fail("--max-stacks must be positive");
  if (auto r = check_map_memory(0, 0, o.max_stacks, kStackEntryBytes); !r)
    return std::unexpected(r.error());
  // Found now, not after the whole trace when the report is to be written.
  if (!o.output.empty()) {
    if (auto r = check_output_option(o.output); !r) return std::unexpected(r.error());
  }
  auto f = report::parse_format(o.format);
  if (!f) return fail("--format: unknown format '{}' (text, json, pprof, folded)", o.format);
  p.format = *f;
  if (p.format == report::Format::kPprof && o.output.empty() && ::isatty(STDOUT_FILENO))
    return fail("--format pprof is binary: give --output FILE");
  if (!o.sample_bytes.empty() && !o.inprocess)
    return fail("--sample-bytes is the sampling library's rate: it needs --inprocess");
  if (o.inprocess) {
    if (o.command.empty())
      return fail("--inprocess needs -c: the sampling library is loaded into a program "
                  "leakwatch starts");
    p.preload_sampling = {report::SamplingMode::kBytes, LEAKWATCH_PRELOAD_DEFAULT_SAMPLE_BYTES};
    if (!o.sample_bytes.empty()) {
      auto r = parse_sample_bytes(o.sample_bytes);
      if (!r) return std::unexpected(r.error());
      p.preload_sampling.rate = *r;
      if (*r == 1) p.preload_sampling = {report::SamplingMode::kExact, 1};
    }
  }
  if (o.stack_walker == "kernel") p.walker = probe::StackWalker::kKernel;
  else if (o.stack_walker != "fp")
    return fail("--stack-walker: unknown walker '{}' (fp, kernel)", o.stack_walker);
  return p;
}

Result<void> check_environment(const GrowthOptions& o) {
  if (auto r = check_tracing_environment("leakwatch growth needs root (CAP_BPF and CAP_PERFMON)",
                                         o.btf);
      !r)
    return r;
  struct stat st;
  if (!o.cgroup.empty()) {
    if (::stat(o.cgroup.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return fail("--cgroup {}: no such directory", o.cgroup);
  }
  return {};
}

class Session {
 public:
  Session(const GrowthOptions& o, const Plan& p) : o_(o), p_(p) {}
  int run();

 private:
  Result<void> setup();
  report::GrowthReport build_report(bool final_report);
  report::GrowthTextOptions text_options() const;
  int finish();

  const GrowthOptions& o_;
  const Plan& p_;
  int target_pid_ = 0;
  std::unique_ptr<ChildProcess> child_;
  tracker::SymbolizingResolver resolver_;
  std::unique_ptr<tracker::GrowthSession> session_;
  UniqueFd signal_fd_;
  UniqueFd pid_fd_;
  int64_t reports_ = 0;
};

Result<void> Session::setup() {
  auto signals = signals_to_fd({SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGPIPE});
  if (!signals) return std::unexpected(signals.error());
  signal_fd_ = std::move(*signals);

  if (o_.pid > 0) {
    if (!process_exists(o_.pid)) return fail("no such process: {}", o_.pid);
    target_pid_ = o_.pid;
    pid_fd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, o_.pid, 0)));
  } else if (!o_.command.empty()) {
    auto words = split_command(o_.command);
    if (!words) return std::unexpected(words.error());
    auto path = resolve_executable((*words)[0]);
    if (!path) return std::unexpected(path.error());
    std::vector<std::string> env;
    if (o_.inprocess) {
      auto lib = probe::find_preload_library();
      if (!lib) return fail("--inprocess: {}", lib.error().message);
      if (auto r = check_preloadable(*path); !r) return fail("--inprocess: {}", r.error().message);
      env = preload_environment(*lib, p_.preload_sampling);
      log::info("--inprocess: {} runs with {} ({}); `leakwatch memleak -p` can trace its "
                "allocations in-process", *path, *lib, describe_sampling(p_.preload_sampling));
    }
    auto child = ChildProcess::Spawn(*path, *words, env);
    if (!child) return std::unexpected(child.error());
    child_ = std::move(*child);
    target_pid_ = child_->pid();
  }

  tracker::GrowthSessionConfig cfg;
  cfg.probe.pid = target_pid_;
  cfg.probe.wait_for_exec = child_ != nullptr;
  cfg.probe.cgroup_path = o_.cgroup;
  cfg.probe.walker = p_.walker;
  cfg.probe.sample_period = o_.sample_faults;
  cfg.probe.rss = !o_.no_rss;
  cfg.probe.max_stacks = o_.max_stacks;
  cfg.probe.btf_path = o_.btf;
  cfg.target.pid = target_pid_;
  if (o_.pid > 0) {
    cfg.target.comm = process_comm(o_.pid);
  } else if (child_) {
    // What the kernel will call it after exec (comm is the basename, 15 characters).
    auto words = split_command(o_.command);
    std::string base = words ? (*words)[0] : o_.command;
    if (auto slash = base.rfind('/'); slash != std::string::npos) base = base.substr(slash + 1);
    cfg.target.comm = base.substr(0, 15);
  }
  cfg.target.cgroup = o_.cgroup;
  auto session = tracker::GrowthSession::Create(cfg, resolver_);
  if (!session) {
    if (o_.pid > 0 && !process_exists(o_.pid)) return fail("no such process: {}", o_.pid);
    return std::unexpected(session.error());
  }
  session_ = std::move(*session);
  // Read a running target's maps now: if it exits before the first symbolization, its
  // stacks are resolved with them.  (A -c command is read when it is about to exit.)
  if (o_.pid > 0) resolver_.snapshot(static_cast<uint32_t>(o_.pid));
  return {};
}

report::GrowthTextOptions Session::text_options() const {
  report::GrowthTextOptions t;
  t.top = o_.top;
  t.time_hhmmss = local_hhmmss();
  return t;
}

report::GrowthReport Session::build_report(bool final_report) {
  report::GrowthReport rep = session_->report(final_report);
  if (rep.target.comm.empty() && target_pid_ > 0) rep.target.comm = process_comm(target_pid_);
  if (o_.verbose) {
    // Run times are kept by the kernel only while kernel.bpf_stats_enabled=1.
    std::string stats;
    for (const auto& st : session_->probe().run_stats())
      if (st.run_cnt)
        stats += fmt::format(" {} {} runs {:.0f} ns/run;", st.program, st.run_cnt,
                             static_cast<double>(st.run_time_ns) /
                                 static_cast<double>(st.run_cnt));
    if (!stats.empty()) rep.notes.push_back("BPF programs:" + stats);
  }
  return rep;
}

int Session::finish() {
  report::GrowthReport rep = build_report(true);
  if (auto w = write_rendered(o_.output, report::render_growth(rep, p_.format, text_options())); !w) {
    log::error("{}", w.error().message);
    return kExitError;
  }
  return kExitOk;
}

int Session::run() {
  if (auto r = setup(); !r) {
    log::error("{}", r.error().message);
    return kExitError;
  }
  const bool interval_text = o_.output.empty() && p_.format == report::Format::kText;
  if (child_) std::printf("Executing '%s' and tracing the resulting process.\n", o_.command.c_str());
  if (target_pid_ > 0)
    std::printf("Tracing memory growth of pid %d, Ctrl+C to quit.\n", target_pid_);
  else
    std::printf("Tracing memory growth in cgroup %s, Ctrl+C to quit.\n", o_.cgroup.c_str());
  std::fflush(stdout);
  if (child_) {
    if (auto r = child_->release(); !r) {
      log::error("{}", r.error().message);
      return kExitError;
    }
  }

  const uint64_t start_ns = monotonic_ns();
  const uint64_t interval_ns = static_cast<uint64_t>(o_.interval_s * 1e9);
  const uint64_t end_ns =
      o_.duration_s > 0 ? start_ns + static_cast<uint64_t>(o_.duration_s * 1e9) : 0;
  uint64_t next_report = start_ns + interval_ns;
  uint64_t next_resolve = start_ns + kResolveEveryNs;
  int exit_code = kExitOk;
  std::string stop_reason;

  for (;;) {
    uint64_t now = monotonic_ns();
    if (end_ns && now >= end_ns) {
      stop_reason = "duration reached";
      break;
    }
    if (now >= next_report) {
      if (o_.count > 0 && reports_ + 1 >= o_.count) {
        stop_reason = "count reached";
        break;  // the last report is the final one
      }
      report::GrowthReport rep = build_report(false);
      reports_++;
      if (interval_text) {
        std::string text = report::write_growth_text(rep, text_options());
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      }
      next_report += interval_ns;
      if (next_report <= now) next_report = now + interval_ns;
      continue;
    }
    uint64_t wake = next_report;
    if (end_ns && end_ns < wake) wake = end_ns;
    // The event ring is written without wakeups: drain it on this tick.
    int timeout_ms = std::min(kDrainTickMs, static_cast<int>((wake - now + 999999) / 1000000));

    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {pid_fd_.get(), POLLIN, 0}};
    int nfds = pid_fd_.valid() ? 2 : 1;
    int r = ::poll(fds, static_cast<nfds_t>(nfds), timeout_ms);
    if (r < 0 && errno != EINTR) {
      log::error("poll: {}", std::strerror(errno));
      exit_code = kExitError;
      break;
    }
    session_->drain();
    // Symbolize new stacks about once a second, while their processes still live.
    if (uint64_t t = monotonic_ns(); t >= next_resolve) {
      session_->resolve_new();
      next_resolve = t + kResolveEveryNs;
    }
    bool stop = false;
    if (r > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si;
      while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
          stop = true;
          stop_reason = si.ssi_signo == SIGINT ? "interrupted" : "terminated";
        }
      }
    }
    // While the command is about to exit its maps are still readable: classify what is
    // waiting and let the symbolizer read them.
    auto on_exiting = [&] {
      session_->drain();
      resolver_.snapshot(static_cast<uint32_t>(target_pid_));
      session_->resolve_new();
    };
    if (child_ && child_->poll(on_exiting)) {
      int st = child_->exit_status();
      if (WIFSIGNALED(st)) {
        log::error("the command was killed by signal {} ({})", WTERMSIG(st), strsignal(WTERMSIG(st)));
        exit_code = kExitTargetGone;
      } else if (o_.verbose) {
        log::info("the command exited with status {}", WEXITSTATUS(st));
      }
      stop = true;
      stop_reason = "command exited";
    }
    if (nfds == 2 && (fds[1].revents & POLLIN)) {
      log::error("pid {} exited during tracing; final report follows", target_pid_);
      exit_code = kExitTargetGone;
      stop = true;
      stop_reason = "target exited";
    }
    if (stop) break;
  }
  log::debug("stopping: {}", stop_reason);
  int rc = finish();
  return rc != kExitOk ? rc : exit_code;
}

}  // namespace

CLI::App* add_growth_subcommand(CLI::App& app, GrowthOptions& o) {
  CLI::App* sub = app.add_subcommand(
      "growth",
      "Find where resident memory grows: page faults (first touches of anonymous pages) and\n"
      "mmap/munmap/mremap/brk calls, by user stack, from kernel tracepoints only (no\n"
      "uprobes: any allocator, any runtime, near-zero cost).  Fault stacks are sampled.");
  sub->add_option("interval", o.interval_s, "interval in seconds between reports")
      ->check(finite_number())
      ->capture_default_str();
  sub->add_option("count", o.count, "number of reports before exiting");
  sub->add_option("-p,--pid", o.pid, "the PID to trace")
      ->each([&o](const std::string&) { o.pid_given = true; });
  sub->add_option("-c,--command", o.command,
                  "execute and trace the specified command (it starts once the tracepoints are "
                  "attached and is ended when leakwatch ends, even by SIGKILL)")
      ->each([&o](const std::string&) { o.command_given = true; });
  sub->add_option("--cgroup", o.cgroup, "trace every task under this cgroup v2 directory");
  sub->add_option("--duration", o.duration_s, "stop after this many seconds with a final report")
      ->check(finite_number());
  sub->add_option("--sample-faults", o.sample_faults,
                  "capture the stack of 1 in N page faults (random draw); estimates are scaled "
                  "back with 95% intervals")
      ->check(not_negative())
      ->capture_default_str();
  sub->add_option("--stack-walker", o.stack_walker,
                  "fp: leakwatch's bounded frame-pointer walk (recovers the caller of frameless "
                  "leaf functions); kernel: bpf_get_stackid")
      ->capture_default_str();
  sub->add_flag("--no-rss", o.no_rss, "do not trace RSS changes (kmem:rss_stat)");
  sub->add_option("-T,--top", o.top, "display only this many top stacks")->capture_default_str();
  sub->add_option("--format", o.format, "final report format: text, json, pprof, folded")
      ->capture_default_str();
  sub->add_option("--output", o.output,
                  "write the final report to FILE (atomically) instead of stdout");
  sub->add_option("--max-stacks", o.max_stacks, "capacity of the stack maps (distinct stacks)")
      ->check(not_negative())
      ->capture_default_str();
  sub->add_option("--btf", o.btf, "kernel BTF file to use instead of /sys/kernel/btf/vmlinux");
  sub->add_flag("--inprocess", o.inprocess,
                "with -c: start the command with libleakwatch-preload.so, which samples its "
                "allocations in the program; `leakwatch memleak -p PID` and the agent's "
                "investigations then trace them without a trap per call");
  sub->add_option("--sample-bytes", o.sample_bytes,
                  "with --inprocess: the library's mean sampling interval in bytes (default "
                  "512K; 1 = every allocation)");
  sub->add_flag("-v,--verbose", o.verbose, "print BPF program activity with each report");
  sub->footer(
      "Exit status: 0 when stopped by Ctrl-C/SIGTERM, --duration, count, or when the -c command\n"
      "exits; 1 on errors; 3 when a -p process exits or the -c command is killed by a signal\n"
      "(the final report is printed in every case).\n"
      "Examples:\n"
      "  leakwatch growth -p $(pidof myservice) 10              report every 10 s\n"
      "  leakwatch growth -c './server --port 8080' --duration 60 --format json --output g.json\n"
      "  leakwatch growth --cgroup /sys/fs/cgroup/system.slice/my.service --format pprof "
      "--output g.pb.gz");
  return sub;
}

int run_growth(const GrowthOptions& opts) {
  auto plan = validate(opts);
  if (!plan) {
    log::error("{}", plan.error().message);
    return kExitError;
  }
  if (auto env = check_environment(opts); !env) {
    log::error("{}", env.error().message);
    return kExitError;
  }
  prepare_tracer_process(opts.verbose);
  Session s(opts, *plan);
  return s.run();
}

}  // namespace leakwatch::cli
