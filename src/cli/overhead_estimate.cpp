#include "cli/overhead_estimate.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <fmt/format.h>

#include "bpf/memleak.h"
#include "common/log.h"
#include "common/procfs.h"
#include "symbolize/kallsyms.h"

namespace leakwatch::cli {
namespace {
// Samples a baseline needs (at ~200 Hz of the target's CPU, a third of a second).
constexpr uint64_t kMinBaselineSamples = 60;
}  // namespace

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

std::vector<std::pair<uint64_t, uint64_t>> kernel_trap_ranges() {
  static const std::vector<std::pair<uint64_t, uint64_t>> ranges = [] {
    std::vector<std::pair<uint64_t, uint64_t>> found;
    auto syms = symbolize::Kallsyms::Load();
    if (!syms) return found;
    for (const char* f : probe::kTrapFunctions)
      if (auto r = syms->range(f)) found.push_back(*r);
    return found;
  }();
  return ranges;
}

CostSampling start_cost_sampling(int pid) {
  CostSampling c;
  if (auto sampler = probe::CostSampler::Create(pid, kernel_trap_ranges())) c.sampler = std::move(*sampler);
  else c.error = sampler.error().message;
  return c;
}

SessionCostReader::SessionCostReader(const session::MemleakSession& s, int pid, CostSampling before)
    : s_(s), pid_(pid), cpu_start_(process_cpu(pid)),
      stats_fd_(bpf_enable_stats(BPF_STATS_RUN_TIME)) {
  if (before.sampler) {
    if (auto taken = before.sampler->drain()) baseline_ = std::move(*taken);
  } else if (before.error.empty()) {
    before = start_cost_sampling(pid);
  }
  sampler_ = std::move(before.sampler);
  sampler_error_ = std::move(before.error);
  if (!sampler_) log::debug("overhead: {}; the trap-cost estimate alone is used", sampler_error_);
}

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
  if (sampler_) {
    // Looked up again when probes were added (a traced cgroup's new process).
    if (s_.attach_results().size() != sites_from_) {
      sites_from_ = s_.attach_results().size();
      sites_ = probe::probe_sites(pid_, s_.attach_results());
      if (!baseline_.empty()) {
        if (auto maps = read_proc_maps(pid_))
          baseline_share_ = probe::share_in_probed_objects(baseline_, *maps, sites_, kMinBaselineSamples);
      }
    }
    if (baseline_share_) r.baseline_allocator_share = *baseline_share_;
    if (auto split = sampler_->read(sites_)) {
      r.sampled = true;
      r.samples_at_probes = split->at_probes;
      r.samples_work = split->work + split->unmapped;
      r.samples_work_elsewhere = split->work_elsewhere + split->unmapped;
    } else {
      r.sampling_error = split.error().message;
    }
  } else {
    r.sampling_error = sampler_error_;
  }
  if (known) last_ = r;
  return r;
}

}  // namespace leakwatch::cli
