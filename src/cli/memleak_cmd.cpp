#include "cli/memleak_cmd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "cli/command_run.h"
#include "cli/kmemleak_cmd.h"
#include "cli/option_checks.h"
#include "cli/output.h"
#include "cli/overhead_estimate.h"
#include "cli/tracer_setup.h"
#include "common/clock.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "common/units.h"
#include "report/render.h"
#include "report/text_writer.h"
#include "session/driver.h"
#include "cli/inject_step.h"
#include "session/inprocess.h"
#include "session/memleak_session.h"

namespace leakwatch::cli {
namespace {

const char* kind_name(uint32_t kind) {
  switch (kind) {
    case LW_FN_MALLOC: return "malloc";
    case LW_FN_CALLOC: return "calloc";
    case LW_FN_REALLOC: return "realloc";
    case LW_FN_REALLOCARRAY: return "reallocarray";
    case LW_FN_POSIX_MEMALIGN: return "posix_memalign";
    case LW_FN_ALIGNED_ALLOC: return "aligned_alloc";
    case LW_FN_VALLOC: return "valloc";
    case LW_FN_NEW: return "operator new";
    case LW_FN_MMAP: return "mmap";
    case LW_FN_MREMAP: return "mremap";
    case LW_FN_FREE: return "free";
    case LW_FN_MUNMAP: return "munmap";
    case LW_FN_HOOK_ALLOC: return "sampled in-process";
    case LW_FN_HOOK_FREE: return "free (in-process)";
    default: return "?";
  }
}

// Everything validated and derived from the flags before anything is attached.
struct Plan {
  session::MemleakSessionOptions session;
  report::Format format = report::Format::kText;
};

// Bounds of the time options: beyond them the nanosecond arithmetic of the loop overflows.
constexpr double kMaxSeconds = 366.0 * 86400;
// Kernel memory a hash map entry takes besides its key and value (element header, lock).
constexpr uint64_t kHashElementOverhead = 64;

Result<Plan> validate(const MemleakOptions& o) {
  Plan plan;
  session::MemleakSessionOptions& p = plan.session;
  // An empty shell variable (-p "$PID", -c "$CMD") must not turn into kernel mode.
  if (o.pid_given && o.pid <= 0)
    return fail("-p: not a valid pid: {} (without -p, -c or --cgroup memleak traces the "
                "kernel; give the pid of the process to trace)", o.pid);
  if (o.command_given) {
    if (auto words = session::split_command(o.command); !words)
      return std::unexpected(words.error());
  }
  int targets = (o.pid != 0) + !o.command.empty() + !o.cgroup.empty();
  if (o.pid != 0 && !o.command.empty()) return fail("-p and -c cannot be used together");
  if (targets > 1) return fail("--cgroup cannot be combined with -p or -c");
  if (!o.cgroup.empty()) {
    struct stat st;
    if (::stat((o.cgroup + "/cgroup.procs").c_str(), &st) != 0)
      return fail("--cgroup {}: not a cgroup v2 directory (no cgroup.procs)", o.cgroup);
  }
  if (o.pid < 0) return fail("-p: not a valid pid: {}", o.pid);
  if ((o.wa_missing_free || o.percpu) && targets > 0)
    return fail("--wa-missing-free and --percpu apply to kernel mode (no -p, -c or --cgroup)");
  if (!(o.interval_s > 0)) return fail("interval must be positive, got {}", o.interval_s);
  if (o.interval_s > kMaxSeconds)
    return fail("interval: at most {} seconds (366 days), got {}", kMaxSeconds, o.interval_s);
  if (o.count == 0 || o.count < -1) return fail("count must be positive, got {}", o.count);
  if (!(o.older_ms >= 0)) return fail("-o: age must be >= 0 ms, got {}", o.older_ms);
  if (o.older_ms > kMaxSeconds * 1000)
    return fail("-o: at most {} ms (366 days), got {}", kMaxSeconds * 1000, o.older_ms);
  if (o.top <= 0) return fail("-T: must be positive, got {}", o.top);
  if (!(o.duration_s >= 0)) return fail("--duration: must be >= 0, got {}", o.duration_s);
  if (o.duration_s > kMaxSeconds)
    return fail("--duration: at most {} seconds (366 days), got {}", kMaxSeconds, o.duration_s);
  if (o.sample_rate == 0) return fail("-s: sample rate must be >= 1");
  if (!o.sample_bytes.empty() && o.sample_rate > 1)
    return fail("-s and --sample-bytes cannot be used together");
  if (!o.sample_bytes.empty()) {
    auto r = session::parse_sample_bytes(o.sample_bytes);
    if (!r) return std::unexpected(r.error());
    p.filter.sampling = {report::SamplingMode::kBytes, *r};
  } else if (o.sample_rate > 1) {
    p.filter.sampling = {report::SamplingMode::kCalls, o.sample_rate};
  }
  if (!o.min_size.empty()) {
    auto r = parse_size(o.min_size);
    if (!r) return fail("-z: {}", r.error().message);
    p.filter.min_size = *r;
  }
  if (!o.max_size.empty()) {
    auto r = parse_size(o.max_size);
    if (!r) return fail("-Z: {}", r.error().message);
    p.filter.max_size = *r;
  }
  // BCC's bounds are inclusive: -z 10 -Z 10 keeps the 10-byte allocations.  -Z 0 keeps
  // only zero-byte requests, which nobody looking for a leak means (0 is not "no limit").
  if (!o.max_size.empty() && p.filter.max_size == 0)
    return fail("-Z 0 keeps only zero-byte allocations (0 does not mean 'no limit': leave -Z "
                "out for no upper bound)");
  if (p.filter.min_size > p.filter.max_size) return fail("-z {} is larger than -Z {}", p.filter.min_size, p.filter.max_size);
  auto f = report::parse_format(o.format);
  if (!f) return fail("--format: unknown format '{}' (text, json, pprof, folded, html)", o.format);
  plan.format = *f;
  if (plan.format == report::Format::kPprof && o.output.empty() && ::isatty(STDOUT_FILENO))
    return fail("--format pprof is binary: give --output FILE");
  if (o.attach == "session") p.attach = probe::AttachMode::kSession;
  else if (o.attach == "classic") p.attach = probe::AttachMode::kClassic;
  else if (o.attach != "auto") return fail("--attach: unknown mode '{}' (auto, session, classic)", o.attach);
  if (o.sort == "count") p.reports.sort = tracker::SortBy::kCount;
  else if (o.sort != "size") return fail("--sort: unknown key '{}' (size, count)", o.sort);
  if (!o.verdicts_only.empty()) {
    p.reports.verdicts_only = report::verdict_from_string(o.verdicts_only);
    if (!p.reports.verdicts_only) return fail("--verdicts-only: unknown verdict '{}' (leak, cache, transient, unknown)", o.verdicts_only);
  }
  auto unwind = session::parse_unwind(o.unwind);
  if (!unwind) return std::unexpected(unwind.error());
  p.unwind = *unwind;
  auto snapshot_size = session::parse_snapshot_size(o.snapshot_size);
  if (!snapshot_size) return std::unexpected(snapshot_size.error());
  p.snapshot_size = *snapshot_size;
  if (o.max_allocs == 0 || o.max_stacks == 0) return fail("--max-allocs/--max-stacks must be positive");
  if (auto r = check_map_memory(o.max_allocs,
                                sizeof(lw_alloc_key) + sizeof(lw_alloc_info) + kHashElementOverhead,
                                o.max_stacks,
                                LW_MAX_STACK_DEPTH * sizeof(uint64_t) + kHashElementOverhead);
      !r)
    return std::unexpected(r.error());
  // Found now, not after the whole trace when the report is to be written.
  if (!o.output.empty()) {
    if (auto r = check_output_option(o.output); !r) return std::unexpected(r.error());
  }
  if (o.inject && (o.pid == 0 || o.inprocess == 0 || !o.objects.empty() ||
                   !o.symbols_prefix.empty()))
    return fail("--inject loads the sampling library into a running process: it needs -p and "
                "excludes --no-inprocess, -O and --symbols-prefix");
  if (o.inprocess == 1) {
    if (o.command.empty() && o.pid == 0)
      return fail("--inprocess needs -c (the sampling library is loaded into a program "
                  "leakwatch starts) or -p of a program that was started with it");
    if (!o.objects.empty() || !o.symbols_prefix.empty())
      return fail("--inprocess wraps the allocator the program binds to: -O and "
                  "--symbols-prefix apply to attach mode only");
  }
  p.inprocess = o.inprocess == 1   ? session::InProcess::kRequired
                : o.inprocess == 0 ? session::InProcess::kNever
                                   : session::InProcess::kDefault;
  p.pid = o.pid;
  p.cgroup = o.cgroup;
  if (!o.command.empty()) {
    auto words = session::split_command(o.command);
    if (!words) return std::unexpected(words.error());
    // `env LD_PRELOAD=... prog` or `LD_PRELOAD=... prog`: prog is the target.
    p.command = session::apply_command_environment(std::move(*words));
  }
  p.objects = o.objects;
  p.symbols_prefix = o.symbols_prefix;
  p.filter.max_allocs = o.max_allocs;
  p.filter.max_stacks = o.max_stacks;
  p.filter.btf = o.btf;
  p.reports.older_ms = o.older_ms;
  p.reports.older_after_exit = o.older_given;
  p.reports.show_allocs = o.show_allocs;
  p.filter.combined_only = o.combined_only;
  p.reports.probe_activity = o.verbose > 0;
  return plan;
}

void print_event(const lw_event& e) {
  if (e.type == 0)
    std::printf("[%u/%u] alloc exited, size = %llu, result = %llx (%s)\n", e.tgid, e.tid,
                static_cast<unsigned long long>(e.size), static_cast<unsigned long long>(e.addr),
                kind_name(e.kind));
  else
    std::printf("[%u/%u] free entered, address = %llx, size = %llu\n", e.tgid, e.tid,
                static_cast<unsigned long long>(e.addr), static_cast<unsigned long long>(e.size));
}

// -v: what is probed where.
void print_probes(const session::MemleakSession& s) {
  log::info("attach mode: {}", s.session_mode() ? "uprobe session (unsampled calls skip the return probe)"
                                                : "classic uprobe + uretprobe");
  for (const auto& a : s.attach_results()) {
    if (a.skipped)
      log::info("  {:<38} {:<28} not probed: {}", a.function, a.object, a.error);
    else if (a.ok)
      log::info("  {:<38} {:<28} at 0x{:x}{}", a.function, a.object, a.offset,
                a.function.starts_with("leakwatch_hook") ? " (5-byte NOP: a call, no trap)"
                : a.emulated                             ? " (emulated)"
                                                         : " (single-stepped)");
    else
      log::info("  {:<38} {:<28} FAILED: {}", a.function, a.object, a.error);
  }
}

report::TextOptions text_options(const MemleakOptions& o) {
  report::TextOptions t;
  t.top = o.top;
  t.show_allocs = o.show_allocs;
  t.time_hhmmss = local_hhmmss();
  return t;
}

int run_process_memleak(const MemleakOptions& o, Plan plan) {
  auto signals = session::catch_stop_signals();
  if (!signals) {
    log::error("{}", signals.error().message);
    return kExitError;
  }
  if (o.trace) plan.session.on_trace_event = print_event;
  // --inject: the library first (or the one the process has), then the in-process -p path
  // at the library's sampling.
  std::vector<std::string> inject_notes;
  if (o.inject) {
    auto step = ensure_injected(o.pid, plan.session.filter.sampling,
                                !o.sample_bytes.empty() || o.sample_rate > 1, o.verbose > 0);
    if (!step) {
      log::error("{}", step.error().message);
      return kExitError;
    }
    plan.session.inprocess = session::InProcess::kRequired;
    plan.session.filter.sampling = step->sampling;
    inject_notes = std::move(step->notes);
  }
  // -v: what the trace costs the target, as the agent's overhead guard measures it: a
  // running target is sampled from before the probes (the baseline), through the trap-cost
  // calibration.
  std::optional<Result<probe::TrapCalibration>> traps;
  CostSampling before;
  if (o.verbose) {
    if (plan.session.pid > 0) before = start_cost_sampling(plan.session.pid);
    traps = probe::calibrate_traps();
    if (*traps) log::info("uprobe cost measured at start: {}", (*traps)->summary());
  }
  auto created = session::MemleakSession::Create(plan.session);
  if (!created) {
    log::error("{}", created.error().message);
    return kExitError;
  }
  session::MemleakSession& s = **created;
  if (o.verbose) print_probes(s);
  std::optional<analysis::OverheadGuard> guard;
  std::optional<SessionCostReader> cost;
  if (o.verbose && s.target_pid() > 0) {
    guard.emplace(analysis::GuardOptions{}, guard_trap_cost(*traps, s.inprocess()));
    cost.emplace(s, s.target_pid(), std::move(before));
  }
  auto with_notes = [&](report::Report rep) {
    rep.notes.insert(rep.notes.end(), inject_notes.begin(), inject_notes.end());
    if (guard) {
      guard->update(cost->read());
      rep.notes.push_back("overhead: " + guard->describe());
    }
    return rep;
  };
  for (const auto& a : s.attach_results())
    if (!a.ok && !a.skipped) log::warn("could not attach to {} in {}: {}", a.function, a.object, a.error);

  if (s.child()) std::printf("Executing '%s' and tracing the resulting process.\n", o.command.c_str());
  if (!o.cgroup.empty())
    std::printf("Attaching to cgroup %s, Ctrl+C to quit.\n", o.cgroup.c_str());
  else
    std::printf("Attaching to pid %d, Ctrl+C to quit.\n", s.target_pid());
  std::fflush(stdout);

  CommandRun c{o.interval_s, o.count, o.duration_s, o.output,
               o.output.empty() && plan.format == report::Format::kText, signals->get()};
  return run_with_reports<report::Report>(
      s, c, [&](bool final_report) { return with_notes(s.report(final_report)); },
      [&](const report::Report& r) { return report::write_bcc_text(r, text_options(o)); },
      [&](const report::Report& r) { return report::render(r, plan.format, text_options(o)); });
}

}  // namespace

CLI::App* add_memleak_subcommand(CLI::App& app, MemleakOptions& o) {
  CLI::App* sub = app.add_subcommand(
      "memleak",
      "Trace outstanding allocations of a process (BCC memleak compatible).\n"
      "Probes malloc/calloc/realloc/free, posix_memalign & co., C++ operator new/delete and\n"
      "mmap/munmap/mremap called by the program, keeps each outstanding allocation by address\n"
      "and prints the stacks holding the most memory every INTERVAL seconds.");
  CLI::Option* interval =
      sub->add_option("interval", o.interval_s,
                       "interval in seconds to print outstanding allocations (with --format "
                       "html and none given: 1, one point of the report's timeline a second)")
          ->check(finite_number())
          ->capture_default_str();
  sub->add_option("count", o.count, "number of times to print the report before exiting");
  sub->add_option("-p,--pid", o.pid, "the PID to trace")
      ->each([&o](const std::string&) { o.pid_given = true; });
  sub->add_option("--cgroup", o.cgroup,
                  "trace every process under this cgroup v2 directory, including processes "
                  "started later (filtered in BPF; every process mapping the probed libraries "
                  "takes the uprobe trap)");
  sub->add_flag("-t,--trace", o.trace, "print trace messages for each alloc/free call");
  sub->add_flag("-a,--show-allocs", o.show_allocs,
                "show allocation addresses and sizes as well as call stacks");
  sub->add_option("-o,--older", o.older_ms,
                  "prune allocations younger than this age in milliseconds (the final report "
                  "of a -c command that has exited keeps them all unless -o is given)")
      ->check(finite_number())
      ->each([&o](const std::string&) { o.older_given = true; })
      ->capture_default_str();
  sub->add_option("-c,--command", o.command,
                  "execute and trace the specified command (it starts once the probes are "
                  "attached and is ended when leakwatch ends, even by SIGKILL); leading "
                  "NAME=value words and `env NAME=value` set its environment, e.g. "
                  "-c \"env LD_PRELOAD=libjemalloc.so.2 ./server\" traces ./server")
      ->each([&o](const std::string&) { o.command_given = true; });
  sub->add_flag("--combined-only", o.combined_only,
                "show combined allocation statistics only (per-stack totals kept in BPF)");
  sub->add_flag("--wa-missing-free", o.wa_missing_free,
                "workaround to alleviate misjudgments when free is missing (kernel mode)");
  sub->add_option("-s,--sample-rate", o.sample_rate,
                  "sample every N-th allocation (random 1-in-N draw); printed figures stay "
                  "sampled as in BCC, an estimate line (x N) follows")
      ->check(not_negative())
      ->capture_default_str();
  sub->add_option("--sample-bytes", o.sample_bytes,
                  "byte sampling: each allocated byte sampled with probability 1/R (e.g. 512K); "
                  "unbiased estimates with 95% intervals");
  sub->add_option("-T,--top", o.top, "display only this many top allocating stacks (by size)")
      ->capture_default_str();
  sub->add_option("-z,--min-size", o.min_size,
                  "capture only allocations of at least this size (bytes, or 4K, 1M...; the "
                  "bound is included, as in BCC)");
  sub->add_option("-Z,--max-size", o.max_size,
                  "capture only allocations of at most this size (included, as in BCC)");
  sub->add_option("-O,--obj", o.objects,
                  "attach to allocator functions in the specified object (repeatable)");
  sub->add_flag("--percpu", o.percpu, "trace percpu allocations (kernel mode)");
  sub->add_option("--symbols-prefix", o.symbols_prefix,
                  "memory allocator symbols prefix (e.g. je_)");
  sub->add_option("--sort", o.sort, "order stacks by: size or count")->capture_default_str();
  sub->add_option("--duration", o.duration_s, "stop after this many seconds with a final report")
      ->check(finite_number());
  sub->add_flag("-v,--verbose", o.verbose,
                "explain what is probed where, and print probe activity with each report");
  sub->add_option("--format", o.format,
                  "final report format: text, json, pprof, folded, html (one self-contained "
                  "page: flame graph, timeline, stacks)")
      ->capture_default_str();
  sub->add_option("--output", o.output,
                  "write the final report to FILE (atomically) instead of stdout");
  sub->add_option("--max-allocs", o.max_allocs,
                  "capacity of the outstanding-allocations map (entries)")
      ->check(not_negative())
      ->capture_default_str();
  sub->add_option("--max-stacks", o.max_stacks, "capacity of the stack map (distinct stacks)")
      ->check(not_negative())
      ->capture_default_str();
  sub->add_option("--attach", o.attach,
                  "probe style: auto, session (kernel 6.13+) or classic uprobe+uretprobe")
      ->capture_default_str();
  sub->add_option("--unwind", o.unwind,
                  "how stacks are walked: fp (frame pointers, in the kernel), dwarf (a copy of "
                  "the user stack is unwound with the objects' CFI: whole stacks through code "
                  "without frame pointers), auto (dwarf when the program has no frame pointers)")
      ->capture_default_str();
  sub->add_option("--snapshot-size", o.snapshot_size,
                  "bytes of user stack copied per recorded allocation with --unwind dwarf")
      ->capture_default_str();
  sub->add_option("--btf", o.btf, "kernel BTF file to use instead of /sys/kernel/btf/vmlinux");
  // Two flags rather than one with a negation: the setting has a third state (unset).
  auto* no_inprocess = sub->add_flag_callback(
      "--no-inprocess", [&o] { o.inprocess = 0; },
      "probe the allocator even where in-process sampling would be the default (-c with "
      "sampling, or -p of a program running with libleakwatch-preload.so)");
  sub->add_flag_callback("--inprocess", [&o] { o.inprocess = 1; },
                "with -c: preload libleakwatch-preload.so into the command, which samples "
                "allocations in the program (by bytes with --sample-bytes R, 1 call in N with "
                "-s N, else every one) and reaches BPF only for sampled blocks and their frees: "
                "no trap on unsampled calls. The default with -c and -s or --sample-bytes when "
                "the program can load it (dynamically linked glibc program, malloc not its own). "
                "With -p: the program runs with the library already (LD_PRELOAD, or leakwatch "
                "growth -c --inprocess); its hooks are probed at its own rate, the default there")
      ->excludes(no_inprocess);
  sub->add_flag("--inject", o.inject,
                "with -p: load libleakwatch-preload.so into the running process (ptrace, at a "
                "safe point of one thread, all threads paused a few ms) and trace it in-process: "
                "no trap on unsampled calls. Sampling as -s N / --sample-bytes R say, else every "
                "allocation; figures count allocations since injection. A process that has the "
                "library already is traced with it as it is. See README (--inject) for the "
                "safety rules and limits");
  sub->add_option("--verdicts-only", o.verdicts_only,
                  "report only stacks with this verdict (leak, cache, transient, unknown)");
  sub->footer(
      "Exit status: 0 when stopped by Ctrl-C/SIGTERM, --duration, count, or when the -c command\n"
      "exits; 1 on errors; 3 when a -p process exits or the -c command is killed by a signal\n"
      "(the final report is printed in every case).\n"
      "Examples:\n"
      "  leakwatch memleak -p $(pidof myservice) 10          report every 10 s\n"
      "  leakwatch memleak -c './server --port 8080' -s 1000 sampled, command started traced\n"
      "  leakwatch memleak -c ./server --sample-bytes 512K  cheapest: sampled in the program\n"
      "  leakwatch memleak -p 1234 --duration 60 --format json --output leaks.json\n"
      "  leakwatch memleak -c ./server --format html --output leak.html   open it in a browser");
  // A page's timeline needs points: one per report.
  sub->parse_complete_callback([&o, interval] {
    if (interval->count() == 0 && o.format == "html") o.interval_s = 1;
  });
  return sub;
}

int run_memleak(const MemleakOptions& opts) {
  auto plan = validate(opts);
  if (!plan) {
    log::error("{}", plan.error().message);
    return kExitError;
  }
  if (auto env = check_tracing_environment(
          "leakwatch memleak needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE)", opts.btf);
      !env) {
    log::error("{}", env.error().message);
    return kExitError;
  }
  prepare_tracer_process(opts.verbose);
  if (opts.pid == 0 && !opts.pid_given && !opts.command_given && opts.cgroup.empty())
    return run_kernel_memleak(opts, plan->session, plan->format);
  return run_process_memleak(opts, std::move(*plan));
}

}  // namespace leakwatch::cli
