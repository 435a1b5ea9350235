#include "report/alert.h"

#include <fmt/format.h>

#include "report/frame_format.h"

namespace leakwatch::report {

Alert evaluate_alert(const Report& report, double threshold_mb) {
  Alert a;
  a.threshold_mb = threshold_mb;
  const StackReport* top = nullptr;
  for (const StackReport& s : report.stacks) {
    if (s.verdict != Verdict::kLeak && s.verdict != Verdict::kUnknown) continue;
    if (s.bytes.estimate <= 0) continue;  // a diff's shrinking stacks are not suspects
    a.suspect_bytes += s.bytes.estimate;
    ++a.suspect_stacks;
    if (!top || s.bytes.estimate > top->bytes.estimate) top = &s;
  }
  const double mb = a.suspect_bytes / kBytesPerMb;
  if (mb > kHighSeverityMb) a.severity = "high";
  else if (mb > threshold_mb) a.severity = "medium";
  else a.severity = "none";

  std::string where;
  if (top) {
    a.top_bytes = top->bytes.estimate;
    if (!top->frames.empty()) {
      a.top_function = frame_label(top->frames.front());
      a.top_module = top->frames.front().module;
    } else {
      a.top_function = "[no stack]";
    }
    where = fmt::format("; top: {}{} with {:.1f} MB ({})", a.top_function,
                        a.top_module.empty() ? "" : " [" + a.top_module + "]",
                        a.top_bytes / kBytesPerMb, to_string(top->verdict));
  }
  std::string target = report.target.kernel ? "kernel"
                       : !report.target.cgroup.empty()
                           ? "cgroup " + report.target.cgroup
                           : fmt::format("pid {} ({})", report.target.pid, report.target.comm);
  if (a.severity == "none") {
    a.text = fmt::format("OK: {}: {:.1f} MB outstanding in {} leak/unknown stacks, below "
                         "the {:g} MB threshold{}",
                         target, mb, a.suspect_stacks, threshold_mb, where);
  } else {
    a.text = fmt::format("ALERT {}: {}: {:.1f} MB outstanding in {} leak/unknown stacks "
                         "(threshold {:g} MB, high above {:.0f} MB){}",
                         a.severity, target, mb, a.suspect_stacks, threshold_mb,
                         kHighSeverityMb, where);
  }
  return a;
}

}  // namespace leakwatch::report
