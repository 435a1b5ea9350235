// Difference of two reports of the same program: what grew between BASE and NOW.
#pragma once

#include "report/model.h"

namespace leakwatch::report {

// Stacks are matched by their call path (function and module of each frame, addresses
// ignored, so two runs with different ASLR bases or builds still match; unknown frames match
// by module).  Each output stack carries NOW's frames and verdict and, in bytes, count,
// alloc_bytes and alloc_count, NOW - BASE for both the sampled and the estimated figure; the
// interval is the difference's, from the two half-widths added in quadrature (independent
// samples).  Stacks only in BASE appear with a negative change and the reason
// "absent from the newer report"; stacks whose bytes and count did not change are left out.
// Sorted by change in estimated bytes, largest growth first.  The result's metadata is
// NOW's, its duration the time between the two, its notes say what was compared.
// Pure function; thread-safe.
Report diff_reports(const Report& base, const Report& now);

}  // namespace leakwatch::report
