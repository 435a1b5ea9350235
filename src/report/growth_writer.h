// Writers for the growth report (growth_report.h).  Pure functions of their arguments;
// thread-safe.
//
// Text (one block per report, largest growth first):
//   [HH:MM:SS] Top N stacks by memory growth (pid 1234 comm, 12.0 s):
//   \t67108864 bytes faulted (anonymous, 16384 faults), 0 bytes mapped, from stack
//   \t\t0x000055d0c1a2b1c9\tgrow_heap_pages+0x19 [app]
//   \t  estimated from 1 in 16 fault stacks (95% CI 62914560-71303168 bytes)   (sampled only)
//   \t  also: 4096 bytes of file-backed faults; 1048576 bytes of file mappings  (when any)
//   RSS pid 1234: anon 1.2 MiB -> 65.3 MiB (peak 65.3 MiB), file ..., shmem ..., swap ...
//   faults: 16500 (anonymous 16400, file 100, unknown 0); stacks of 1031 sampled
//   mappings: 3 mmap, 1 munmap, 0 mremap, 2 brk calls; anonymous still mapped 64.0 MiB ...
//   lost: stack_lost=3                                  (only when something was lost)
//   note: ...
//
// JSON: one object, versioned by kGrowthReportVersion:
//   version, kind: "growth", target {pid, comm, cgroup?}, sample_period, page_size,
//   stack_walker ("fp", "kernel", "dwarf"), unwind {mode, decision, snapshot_size,
//   snapshots, snapshot_bytes, unwound, truncated, failed, unwind_ms},
//   duration_s, timestamp_unix_ms, final,
//   stacks: [{stack_id, pid, frames: [{address, function, module, module_path, build_id,
//             offset, module_offset, file, line, inlined}], faulted_bytes {sampled, estimate,
//             ci95: [lo, hi]}, faults {...}, file_faulted_bytes {...}, mapped_bytes,
//             mapped_regions, brk_bytes, file_mapped_bytes, growth_bytes}],
//   processes: [{pid, comm, rss: {anon|file|shmem|swap: {first, current, peak}}}],
//   totals {faults, anon_faults, file_faults, unknown_faults, classes_estimated,
//           sampled_faults, faulted_bytes, mapped_bytes, brk_bytes, file_mapped_bytes,
//           mmap_calls, munmap_calls, mremap_calls, brk_calls},
//   lost {counter: value}, notes [...]
// Addresses are hex strings, as in the allocation report's JSON.
//
// pprof: the allocation writer's profile (mappings, locations, functions) with sample types
// faulted_bytes/bytes (default), mapped_bytes/bytes, faults/count.
// Folded: "outermost;...;innermost growth_bytes" per stack.
#pragma once

#include <string>

#include "common/result.h"
#include "report/growth_report.h"
#include "report/render.h"

namespace leakwatch::report {

struct GrowthTextOptions {
  int top = 10;                 // stacks printed
  std::string time_hhmmss;      // header time, supplied by the caller (deterministic output)
};

std::string write_growth_text(const GrowthReport& report, const GrowthTextOptions& options);
std::string write_growth_json(const GrowthReport& report);

// The stacks as an allocation-model Report (frames, stack ids; bytes = growth_bytes), for
// the writers that only need frames and one weight per stack (folded, pprof).
Report growth_as_report(const GrowthReport& report);

// The rendered report in any format (pprof is gzipped protobuf, the others UTF-8 text).
[[nodiscard]] Result<std::string> render_growth(const GrowthReport& report, Format format,
                                                const GrowthTextOptions& text_options);

}  // namespace leakwatch::report
