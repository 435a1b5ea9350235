#include "report/diff.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include <fmt/format.h>

namespace leakwatch::report {

namespace {

std::string path_key(const StackReport& s) {
  std::string key;
  for (const Frame& f : s.frames) {
    key += f.function.empty() ? "?" : f.function;
    key += '\x1f';
    key += f.module;
    key += '\x1e';
  }
  return key;
}

// Two stacks of one report with the same path (different addresses) are one call path.
Estimate sum(const Estimate& a, const Estimate& b) {
  auto half = [](const Estimate& e) { return std::max(e.ci_hi - e.estimate, e.estimate - e.ci_lo); };
  double h = std::hypot(half(a), half(b));
  double est = a.estimate + b.estimate;
  return Estimate{a.sampled + b.sampled, est, est - h, est + h};
}

Estimate minus(const Estimate& now, const Estimate& base) {
  Estimate neg{-base.sampled, -base.estimate, -base.ci_hi, -base.ci_lo};
  return sum(now, neg);
}

struct Entry {
  StackReport now;  // frames and verdict from NOW (or BASE when only there)
  StackReport base;
  bool in_now = false;
  bool in_base = false;
};

void accumulate(StackReport& into, const StackReport& s) {
  into.bytes = sum(into.bytes, s.bytes);
  into.count = sum(into.count, s.count);
  into.alloc_bytes = sum(into.alloc_bytes, s.alloc_bytes);
  into.alloc_count = sum(into.alloc_count, s.alloc_count);
}

}  // namespace

Report diff_reports(const Report& base, const Report& now) {
  std::map<std::string, Entry> entries;
  std::vector<std::string> order;  // first-seen order, for a deterministic tie-break
  auto entry_for = [&](const StackReport& s) -> Entry& {
    auto [it, inserted] = entries.try_emplace(path_key(s));
    if (inserted) order.push_back(it->first);
    return it->second;
  };
  for (const StackReport& s : now.stacks) {
    Entry& e = entry_for(s);
    if (!e.in_now) {
      e.now = s;
      e.in_now = true;
    } else {
      accumulate(e.now, s);
    }
  }
  for (const StackReport& s : base.stacks) {
    Entry& e = entry_for(s);
    if (!e.in_base) {
      e.base = s;
      e.in_base = true;
    } else {
      accumulate(e.base, s);
    }
  }

  Report out;
  out.version = now.version;
  out.target = now.target;
  out.sampling = now.sampling;
  out.duration_s = now.duration_s - base.duration_s;
  out.timestamp_unix_ms = now.timestamp_unix_ms;
  out.final = now.final;
  out.lost = now.lost;
  for (const std::string& key : order) {
    const Entry& e = entries[key];
    StackReport s;
    if (e.in_now) {
      s = e.now;
      if (e.in_base) {
        s.bytes = minus(e.now.bytes, e.base.bytes);
        s.count = minus(e.now.count, e.base.count);
        s.alloc_bytes = minus(e.now.alloc_bytes, e.base.alloc_bytes);
        s.alloc_count = minus(e.now.alloc_count, e.base.alloc_count);
      }
    } else {
      s = e.base;
      s.bytes = minus(Estimate{}, e.base.bytes);
      s.count = minus(Estimate{}, e.base.count);
      s.alloc_bytes = minus(Estimate{}, e.base.alloc_bytes);
      s.alloc_count = minus(Estimate{}, e.base.alloc_count);
      s.verdict = Verdict::kUnknown;
      s.score = 0;
      s.reason = "absent from the newer report";
      s.growth_bytes_per_s = 0;
      s.oldest_age_s = 0;
      s.allocations.clear();
    }
    if (s.bytes.estimate == 0 && s.count.estimate == 0) continue;
    out.stacks.push_back(std::move(s));
  }
  std::stable_sort(out.stacks.begin(), out.stacks.end(), [](const auto& a, const auto& b) {
    if (a.bytes.estimate != b.bytes.estimate) return a.bytes.estimate > b.bytes.estimate;
    return a.count.estimate > b.count.estimate;
  });

  out.notes.push_back(fmt::format(
      "diff: change in outstanding allocations from the base report (t={} ms, {:.1f} s) to "
      "the newer one (t={} ms, {:.1f} s)",
      base.timestamp_unix_ms, base.duration_s, now.timestamp_unix_ms, now.duration_s));
  if (base.sampling != now.sampling)
    out.notes.push_back(fmt::format(
        "diff: the reports were sampled differently (base {} {}, newer {} {}); changes mix "
        "two estimators", to_string(base.sampling.mode), base.sampling.rate,
        to_string(now.sampling.mode), now.sampling.rate));
  return out;
}

}  // namespace leakwatch::report
