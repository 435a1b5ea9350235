#include "cli/growth_cmd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cli/command_run.h"
#include "cli/option_checks.h"
#include "cli/output.h"
#include "cli/tracer_setup.h"
#include "common/clock.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "alloc/preload_plan.h"
#include "report/growth_writer.h"
#include "session/driver.h"
#include "session/growth_session.h"
#include "session/inprocess.h"

namespace leakwatch::cli {
namespace {

// Everything validated and derived from the flags before anything is attached.
struct Plan {
  session::GrowthSessionOptions session;
  report::Format format = report::Format::kText;
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
    if (auto words = session::split_command(o.command); !words)
      return std::unexpected(words.error());
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
  if (!f) return fail("--format: unknown format '{}' (text, json, pprof, folded, html)", o.format);
  p.format = *f;
  if (p.format == report::Format::kPprof && o.output.empty() && ::isatty(STDOUT_FILENO))
    return fail("--format pprof is binary: give --output FILE");
  if (!o.sample_bytes.empty() && !o.inprocess)
    return fail("--sample-bytes is the sampling library's rate: it needs --inprocess");
  if (o.inprocess) {
    if (o.command.empty())
      return fail("--inprocess needs -c: the sampling library is loaded into a program "
                  "leakwatch starts");
    report::Sampling preload{report::SamplingMode::kBytes, LEAKWATCH_PRELOAD_DEFAULT_SAMPLE_BYTES};
    if (!o.sample_bytes.empty()) {
      auto r = session::parse_sample_bytes(o.sample_bytes);
      if (!r) return std::unexpected(r.error());
      preload.rate = *r;
      if (*r == 1) preload = {report::SamplingMode::kExact, 1};
    }
    p.session.preload = preload;
  }
  probe::GrowthProbeConfig& pc = p.session.probe;
  if (o.stack_walker == "kernel") pc.walker = probe::StackWalker::kKernel;
  else if (o.stack_walker != "fp")
    return fail("--stack-walker: unknown walker '{}' (fp, kernel)", o.stack_walker);
  auto unwind = session::parse_unwind(o.unwind);
  if (!unwind) return std::unexpected(unwind.error());
  p.session.unwind = *unwind;
  auto snapshot_size = session::parse_snapshot_size(o.snapshot_size);
  if (!snapshot_size) return std::unexpected(snapshot_size.error());
  p.session.snapshot_size = *snapshot_size;
  pc.sample_period = o.sample_faults;
  pc.rss = !o.no_rss;
  pc.max_stacks = o.max_stacks;
  pc.btf_path = o.btf;
  p.session.pid = o.pid;
  p.session.cgroup = o.cgroup;
  if (!o.command.empty()) {
    auto words = session::split_command(o.command);
    if (!words) return std::unexpected(words.error());
    // `env LD_PRELOAD=... prog` or `LD_PRELOAD=... prog`: prog is the target.
    p.session.command = session::apply_command_environment(std::move(*words));
  }
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

report::GrowthTextOptions text_options(const GrowthOptions& o) {
  report::GrowthTextOptions t;
  t.top = o.top;
  t.time_hhmmss = local_hhmmss();
  return t;
}

// -v: each program's run time, kept by the kernel while kernel.bpf_stats_enabled=1.
void add_run_stats(const session::GrowthSession& s, report::GrowthReport& rep) {
  std::string stats;
  for (const auto& st : s.probe().run_stats())
    if (st.run_cnt)
      stats += fmt::format(" {} {} runs {:.0f} ns/run;", st.program, st.run_cnt,
                           static_cast<double>(st.run_time_ns) / static_cast<double>(st.run_cnt));
  if (!stats.empty()) rep.notes.push_back("BPF programs:" + stats);
}

int run_session(const GrowthOptions& o, const Plan& plan) {
  auto signals = session::catch_stop_signals();
  if (!signals) {
    log::error("{}", signals.error().message);
    return kExitError;
  }
  auto created = session::GrowthSession::Create(plan.session);
  if (!created) {
    log::error("{}", created.error().message);
    return kExitError;
  }
  session::GrowthSession& s = **created;
  if (s.child()) std::printf("Executing '%s' and tracing the resulting process.\n", o.command.c_str());
  if (s.target_pid() > 0)
    std::printf("Tracing memory growth of pid %d, Ctrl+C to quit.\n", s.target_pid());
  else
    std::printf("Tracing memory growth in cgroup %s, Ctrl+C to quit.\n", o.cgroup.c_str());
  std::fflush(stdout);

  CommandRun c{o.interval_s, o.count, o.duration_s, o.output,
               o.output.empty() && plan.format == report::Format::kText, signals->get()};
  return run_with_reports<report::GrowthReport>(
      s, c,
      [&](bool final_report) {
        report::GrowthReport rep = s.report(final_report);
        if (o.verbose) add_run_stats(s, rep);
        return rep;
      },
      [&](const report::GrowthReport& r) { return report::write_growth_text(r, text_options(o)); },
      [&](const report::GrowthReport& r) {
        return report::render_growth(r, plan.format, text_options(o));
      });
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
                  "attached and is ended when leakwatch ends, even by SIGKILL); leading "
                  "NAME=value words and `env NAME=value` set its environment, e.g. "
                  "-c \"env LD_PRELOAD=libjemalloc.so.2 ./server\" traces ./server")
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
  sub->add_option("--unwind", o.unwind,
                  "how stacks are unwound: fp (walked in BPF by --stack-walker), dwarf (a copy of "
                  "the top of the user stack at each sampled fault and mmap/brk is unwound with "
                  "the objects' CFI: a brk or fault inside malloc or operator new is charged to "
                  "the function that called them), auto (dwarf when the program or its allocator "
                  "libraries keep no frame pointers)")
      ->capture_default_str();
  sub->add_option("--snapshot-size", o.snapshot_size,
                  "bytes of user stack copied per event with --unwind dwarf")
      ->capture_default_str();
  sub->add_flag("--no-rss", o.no_rss, "do not trace RSS changes (kmem:rss_stat)");
  sub->add_option("-T,--top", o.top, "display only this many top stacks")->capture_default_str();
  sub->add_option("--format", o.format,
                  "final report format: text, json, pprof, folded, html (one self-contained "
                  "page: flame graph and stacks)")
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
  return run_session(opts, *plan);
}

}  // namespace leakwatch::cli
