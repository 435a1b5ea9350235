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

ProcessCpu process_cpu(int pid) {
  auto text = read_proc_file(fmt::format("/proc/{}/stat", pid));
  if (!text) return {};
  auto st = parse_proc_stat(*text);
  if (!st) return {};
  const double tck = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return {static_cast<double>(st->utime_ticks + st->stime_ticks) / tck};
}

SessionCostReader::SessionCostReader(const session::MemleakSession& s, int pid)
    : s_(s), pid_(pid), cpu_start_(process_cpu(pid)),
      stats_fd_(bpf_enable_stats(BPF_STATS_RUN_TIME)) {}

analysis::OverheadReading SessionCostReader::read() {
  const ProcessCpu cpu_now = process_cpu(pid_);
  if (cpu_now.total_s < 0 && last_) return *last_;
  probe::Counters c = s_.counters();
  analysis::OverheadReading r;
  r.entry_hits = c[LW_CNT_ALLOC_CALLS] + c[LW_CNT_FREE_CALLS];
  r.return_hits = c[LW_CNT_RETURN_CALLS];
  r.bpf_run_ns = s_.run_stats().run_time_ns;
  const bool known = cpu_now.total_s >= 0 && cpu_start_.total_s >= 0;
  r.target_cpu_s = known ? cpu_now.total_s - cpu_start_.total_s : 0;
  r.elapsed_s = s_.elapsed_s();
  if (known) last_ = r;
  return r;
}

}  // namespace leakwatch::cli
