// Reads the text that BCC memleak (tools/memleak.py) and libbpf-tools memleak print, so that
// `leakwatch report` can convert, diff and alert on what people already collect.
//
// The last "[HH:MM:SS] Top N stacks with outstanding allocations:" block of the input is
// read.  Accepted stack lines:
//   \t80 bytes in 5 allocations from stack          (BCC; libbpf-tools without the tab)
// and frame lines (indented):
//   \t\t0x00007f45c6a6f3b6\tmain+0x6d [allocs]      (BCC since 2023: address column)
//   \t\t main+0x6d [allocs]                         (older BCC: symbol only)
//   \t\tbpf_prog_load [kernel]                      (kernel frame, no offset)
//   \t\t[unknown]   /  [unknown] [libfoo.so]
//   \t0 [<000055d0c1a2b1c9>] main+0x19 [app]        (libbpf-tools; "<null sym>" = unknown)
//   \t\tstack information lost                      (BCC --combined-only: no frames)
// Lines leakwatch's own text adds ("\t  estimated:", "\t  verdict:") are skipped and its
// "\tlost:" and "\tnote:" footers are read back, so leakwatch's text output reads too.
// BCC prints ascending; the returned stacks are sorted largest first like every Report.
// Text that is not indented ends a stack and is skipped ("Detaching...", a shell prompt).
// Damaged lines of the block are an error naming the first one and counting the others,
// never dropped: a count line or allocation line whose figures do not parse, a frame whose
// address column does not parse, a lost: counter that is not NAME=NUMBER, an indented line
// outside any stack.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"
#include "report/model.h"

namespace leakwatch::report {

// sample_rate: the N of BCC's `-s N` (1 when it was not sampling).  BCC prints the sampled
// figures unscaled; the estimates here are sampled x N, with a 95% interval from the
// Horvitz-Thompson variance (for bytes, assuming equal sizes within a stack, since BCC
// prints only the totals).  Pure function; thread-safe.
[[nodiscard]] Result<Report> read_bcc_text(std::string_view text, uint64_t sample_rate);

}  // namespace leakwatch::report
