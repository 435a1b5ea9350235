#include "report/model.h"

namespace leakwatch::report {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::kLeak: return "leak";
    case Verdict::kCache: return "cache";
    case Verdict::kTransient: return "transient";
    case Verdict::kUnknown: break;
  }
  return "unknown";
}

const char* to_string(SamplingMode m) {
  switch (m) {
    case SamplingMode::kCalls: return "calls";
    case SamplingMode::kBytes: return "bytes";
    case SamplingMode::kExact: break;
  }
  return "exact";
}

std::optional<Verdict> verdict_from_string(const std::string& s) {
  for (Verdict v : {Verdict::kUnknown, Verdict::kLeak, Verdict::kCache, Verdict::kTransient})
    if (s == to_string(v)) return v;
  return std::nullopt;
}

std::optional<SamplingMode> sampling_mode_from_string(const std::string& s) {
  for (SamplingMode m : {SamplingMode::kExact, SamplingMode::kCalls, SamplingMode::kBytes})
    if (s == to_string(m)) return m;
  return std::nullopt;
}

}  // namespace leakwatch::report
