// The conclusion of an investigation: the one function that leaks, from the allocation
// trace's report, the growth step's report, or both.
//
//   each step's stacks ──culprit_index──▶ candidates (one per function: bytes summed)
//   allocation trace   ranks by verdict (leak > unknown > cache > transient), then bytes
//                      growth rate, then bytes; its verdict and confidence are the
//                      candidate's largest stack's
//   growth step        ranks by growth bytes; it has no verdict of its own
//   both               the allocation trace's leak wins; the steps "agree" when the growth
//                      step's largest candidate is the same function, else "disagree" and
//                      the reason names both
//
// Alert level: "high" when the function holds more than 100 MB (report/alert.h's unit) or
// grows faster than 100 MB an hour; "medium" for a leak, or more than 10 MB (or 10 MB an
// hour) of growth of unknown kind; "low" for the rest (caches, transients, small unknowns).
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>

#include "report/growth_report.h"
#include "report/model.h"

namespace leakwatch::report {

struct FindingInputs {
  const Report* allocations = nullptr;  // the allocation trace's final report, if any
  std::string allocations_missing;      // why there is none ("failed: ...", "not run: ...")
  std::string allocations_stopped;      // the overhead guard's stop reason, or ""
  const GrowthReport* growth = nullptr; // the growth step's final report, if any
  std::string growth_missing;           // why there is none
};

// nullopt when neither step saw anything that could be a leak (no stacks at all).
std::optional<Finding> make_finding(const FindingInputs& in);

// "high" | "medium" | "low" for a function holding `bytes` and growing at `bytes_per_s`.
std::string alert_level(Verdict verdict, double bytes, double bytes_per_s);

// The finding's first lines for report.txt and logs: "leak in Sessions::open (server):
// 12.0 MiB, +200.0 KiB/s, confidence 0.92, alert high; seen by allocation trace and growth
// step (agree)".
std::string describe_finding(const Finding& f);

}  // namespace leakwatch::report
