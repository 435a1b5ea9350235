#include "cli/kmemleak_cmd.h"

#include <cstdio>

#include "cli/command_run.h"
#include "cli/output.h"
#include "common/clock.h"
#include "common/exit_status.h"
#include "common/log.h"
#include "report/text_writer.h"
#include "session/driver.h"
#include "session/kernel_session.h"

namespace leakwatch::cli {
namespace {

void print_event(const klw_event& e) {
  if (e.type == 0)
    std::printf("[%u] alloc exited, size = %llu, result = %llx (%s)\n", e.tgid,
                static_cast<unsigned long long>(e.size), static_cast<unsigned long long>(e.addr),
                probe::source_name(e.source));
  else
    std::printf("[%u] free entered, address = %llx, size = %llu (%s)\n", e.tgid,
                static_cast<unsigned long long>(e.addr), static_cast<unsigned long long>(e.size),
                probe::source_name(e.source));
}

report::TextOptions text_options(const MemleakOptions& o) {
  report::TextOptions t;
  t.top = o.top;
  t.show_allocs = o.show_allocs;
  t.time_hhmmss = local_hhmmss();
  t.kernel = true;
  return t;
}

}  // namespace

int run_kernel_memleak(const MemleakOptions& o, const session::MemleakSessionOptions& validated,
                       report::Format format) {
  auto signals = session::catch_stop_signals();
  if (!signals) {
    log::error("{}", signals.error().message);
    return kExitError;
  }
  session::KernelMemleakOptions k;
  k.percpu = o.percpu;
  k.wa_missing_free = o.wa_missing_free;
  k.filter = validated.filter;
  k.reports = validated.reports;
  if (o.trace) k.on_trace_event = print_event;
  auto created = session::KernelMemleakSession::Create(k);
  if (!created) {
    log::error("{}", created.error().message);
    return kExitError;
  }
  session::KernelMemleakSession& s = **created;
  for (const auto& a : s.attach_results()) {
    if (a.ok) log::info("  tracepoint {}", a.tracepoint);
    else log::warn("tracepoint {} not traced: {}", a.tracepoint, a.error);
  }
  std::printf("Attaching to kernel allocators, Ctrl+C to quit.\n");
  std::fflush(stdout);

  CommandRun c{o.interval_s, o.count, o.duration_s, o.output,
               o.output.empty() && format == report::Format::kText, signals->get()};
  return run_with_reports<report::Report>(
      s, c, [&](bool final_report) { return s.report(final_report); },
      [&](const report::Report& r) { return report::write_bcc_text(r, text_options(o)); },
      [&](const report::Report& r) { return report::render(r, format, text_options(o)); });
}

}  // namespace leakwatch::cli
