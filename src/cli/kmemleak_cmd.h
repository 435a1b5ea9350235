// `leakwatch memleak` without -p, -c or --cgroup: kernel-mode memleak, as BCC's memleak
// does it (kmalloc/kmem_cache/page allocations, or percpu ones with --percpu, on the kmem
// and percpu tracepoints), with kernel stacks symbolized from /proc/kallsyms and the same
// report writers as user mode.
#pragma once

#include <cstdint>
#include <optional>

#include "cli/memleak_cmd.h"
#include "probe/memleak_probe.h"
#include "report/model.h"
#include "report/render.h"
#include "tracker/tracker.h"

namespace leakwatch::cli {

// The validated flags memleak_cmd.cpp hands over (its own Plan, in the types both know).
struct KernelRunPlan {
  report::Sampling sampling;
  probe::SampleMode sample_mode = probe::SampleMode::kExact;
  uint64_t min_size = 0, max_size = UINT64_MAX;
  report::Format format = report::Format::kText;
  tracker::SortBy sort = tracker::SortBy::kSize;
  std::optional<report::Verdict> verdicts_only;
};

// Runs until Ctrl-C/SIGTERM, --duration or count; prints BCC's interval reports and the
// final report.  Returns the exit status (0 ok, 1 error).
int run_kernel_memleak(const MemleakOptions& opts, const KernelRunPlan& plan);

}  // namespace leakwatch::cli
