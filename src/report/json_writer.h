// The JSON representation of a Report (issue 3's schema), versioned by kReportVersion.
// One object:
//   version, target {pid, comm, cgroup?, kernel?}, sampling {mode: exact|calls|bytes, rate},
//   duration_s, timestamp_unix_ms, final,
//   stacks: [{stack_id, frames: [{address, function, module, module_path, build_id, offset,
//             module_offset, file, line, inlined}], truncated,
//             bytes {sampled, estimate, ci95: [lo, hi]}, count {...}, alloc_bytes {...},
//             alloc_count {...}, verdict, score, reason, growth_bytes_per_s, oldest_age_s,
//             allocations? [{address, size, age_s}]}],
//   lost {counter: value}, notes [...],
//   finding? {function, module, file?, line?, bytes, bytes_per_s, verdict, confidence, reason,
//             seen_by [...], agreement, alert_level},
//   timeline? {t_s [...], total_bytes [...], rss_bytes [...] (null: not read),
//              stacks [{stack_id, bytes [...]}]}   (one value per t_s in every series)
// Addresses are hex strings ("0x7f3a...") because kernel addresses do not fit the 53-bit
// integers JavaScript-based consumers read exactly; every other number is a JSON number
// (integral values printed without a fraction).  Non-finite numbers are written as null and
// read back as NaN.  read_json(write_json(r)) == r for every finite report.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "report/model.h"

namespace leakwatch::report {

// Pure functions; thread-safe.
std::string write_json(const Report& report);
// Unknown fields are ignored (newer minor additions); a missing field takes the model's
// default; a field of the wrong type or a newer major version is an error naming the field.
[[nodiscard]] Result<Report> read_json(std::string_view text);

}  // namespace leakwatch::report
