#include "cli/overhead_estimate.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <fmt/format.h>

#include "bpf/memleak.h"
#include "common/procfs.h"

namespace leakwatch::cli {

analysis::TrapCost guard_trap_cost(const Result<probe::TrapCalibration>& c, bool inprocess) {
  if (!c)
    return {0, 0, fmt::format("trap cost not measured ({}): BPF run time only, a lower bound",
                              c.error().message)};
  if (inprocess)
    return {c->nop5_ns, c->return_ns,
            fmt::format("measured at start: 5-byte NOP hook {:.0f} ns", c->nop5_ns)};
  return {c->entry_ns, c->return_ns,
          fmt::format("measured at start: entry {:.0f} ns, return {:.0f} ns", c->entry_ns,
                      c->return_ns)};
}

double process_cpu_s(int pid) {
  auto text = read_proc_file(fmt::format("/proc/{}/stat", pid));
  if (!text) return -1;
  auto st = parse_proc_stat(*text);
  if (!st) return -1;
  return static_cast<double>(st->utime_ticks + st->stime_ticks) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
}

SessionCostReader::SessionCostReader(const session::MemleakSession& s, int pid)
    : s_(s), pid_(pid), cpu_start_(process_cpu_s(pid)),
      stats_fd_(bpf_enable_stats(BPF_STATS_RUN_TIME)) {}

analysis::OverheadReading SessionCostReader::read() {
  const double cpu_now = process_cpu_s(pid_);
  if (cpu_now < 0 && last_) return *last_;
  probe::Counters c = s_.counters();
  analysis::OverheadReading r;
  r.entry_hits = c[LW_CNT_ALLOC_CALLS] + c[LW_CNT_FREE_CALLS];
  r.return_hits = c[LW_CNT_RETURN_CALLS];
  r.bpf_run_ns = s_.run_stats().run_time_ns;
  r.target_cpu_s = cpu_now >= 0 && cpu_start_ >= 0 ? cpu_now - cpu_start_ : 0;
  r.elapsed_s = s_.elapsed_s();
  if (cpu_now >= 0) last_ = r;
  return r;
}

}  // namespace leakwatch::cli
