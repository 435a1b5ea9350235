// A leak alert from one report: what people write their own analyzer scripts for.
#pragma once

#include <cstddef>
#include <string>

#include "report/model.h"

namespace leakwatch::report {

// Sizes in alerts are MiB (1 MB = 1,048,576 bytes), the unit memory limits are set in.
inline constexpr double kBytesPerMb = 1024.0 * 1024.0;
inline constexpr double kHighSeverityMb = 100.0;

struct Alert {
  std::string severity;        // "high" | "medium" | "none"
  double suspect_bytes = 0;    // estimated outstanding bytes of leak-or-unknown stacks
  size_t suspect_stacks = 0;   // how many stacks that is
  double threshold_mb = 0;     // the medium threshold it was compared with
  std::string top_function;    // first frame of the largest suspect stack (frame_label)
  std::string top_module;      // its module, may be empty
  double top_bytes = 0;        // that stack's estimated outstanding bytes
  std::string text;            // one line, e.g. "ALERT high: 152.3 MB ..."
};

// Suspect stacks are those with verdict leak or unknown (a cache or transient stack is not a
// leak).  severity "high" when their estimated outstanding bytes exceed 100 MB, "medium"
// when they exceed threshold_mb, else "none".  Pure function; thread-safe.
Alert evaluate_alert(const Report& report, double threshold_mb);

}  // namespace leakwatch::report
