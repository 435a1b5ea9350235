// BCC memleak's text format, so scripts and parsers written for BCC keep working:
//
//   [HH:MM:SS] Top N stacks with outstanding allocations:
//   \taddr = 55d0c3a012a0 size = 4096                    (only with show_allocs)
//   \t4096 bytes in 1 allocations from stack
//   \t\t0x000055d0c1a2b1c9\tleak_fn+0x19 [app]
//   \t  estimated: 40960 bytes in 10 allocations (95% CI 20480-61440 bytes)   (sampled only)
//   \t  verdict: leak (score 0.93): <reason>                                  (when known)
//   \tlost: allocs_map_full=3                            (only when something was lost)
//   \tnote: ...
//
// The extra lines leakwatch adds start with "\t  " (tab, two spaces): they match neither a
// BCC frame line ("\t\t") nor the count line regex `(\d+) bytes in (\d+) allocations from
// stack`, and they are plain ASCII because BCC-era parsers decode the output as ASCII.
#pragma once

#include <string>

#include "report/model.h"

namespace leakwatch::report {

struct TextOptions {
  int top = 10;                  // stacks to print (the header shows this number, as BCC)
  bool show_allocs = false;      // -a: one "addr = ... size = ..." line per allocation
  bool show_verdicts = true;     // the "verdict:" line under each stack
  std::string time_hhmmss;       // header time, supplied by the caller (deterministic output)
  bool kernel = false;           // kernel mode: frames without a module are kernel frames
};

// Pure function of its arguments; thread-safe.
std::string write_bcc_text(const Report& report, const TextOptions& options);

}  // namespace leakwatch::report
