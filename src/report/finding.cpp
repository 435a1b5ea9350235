#include "report/finding.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "analysis/verdict.h"
#include "report/alert.h"
#include "report/culprit.h"

namespace leakwatch::report {
namespace {

constexpr double kMediumBytes = 10 * kBytesPerMb;
constexpr double kHour = 3600;

int rank(Verdict v) {
  switch (v) {
    case Verdict::kLeak: return 3;
    case Verdict::kUnknown: return 2;
    case Verdict::kCache: return 1;
    case Verdict::kTransient: return 0;
  }
  return 0;
}

// One function and what its stacks hold.
struct Candidate {
  Frame frame;            // the culprit frame of its first stack
  double bytes = 0;       // of the stacks that share the best verdict
  double bytes_per_s = 0;
  size_t stacks = 0;
  Verdict verdict = Verdict::kUnknown;
  double confidence = 0;
  std::string verdict_reason;  // the largest stack's
};

std::string key(const Frame& f) {
  return f.function.empty() ? fmt::format("{}+{:#x}", f.module, f.module_offset)
                            : f.function + "\x1f" + f.module;
}

std::string label(const Frame& f) {
  return f.function.empty() ? fmt::format("{}+{:#x}", f.module, f.module_offset) : f.function;
}

Candidate* find_or_add(std::vector<Candidate>& cs, const Frame& f) {
  for (Candidate& c : cs)
    if (key(c.frame) == key(f)) return &c;
  cs.emplace_back();
  cs.back().frame = f;
  return &cs.back();
}

std::vector<Candidate> allocation_candidates(const Report& r) {
  std::vector<Candidate> cs;
  for (const StackReport& s : r.stacks) {
    if (s.bytes.estimate <= 0) continue;
    auto i = culprit_index(s.frames);
    if (!i) continue;
    Candidate* c = find_or_add(cs, s.frames[*i]);
    const bool better = c->stacks == 0 || rank(s.verdict) > rank(c->verdict);
    if (better) {
      c->verdict = s.verdict;
      c->bytes = c->bytes_per_s = 0;
      c->stacks = 0;
      c->confidence = s.score;
      c->verdict_reason = s.reason;
    }
    if (s.verdict != c->verdict) continue;
    c->bytes += s.bytes.estimate;
    c->bytes_per_s += s.growth_bytes_per_s;
    ++c->stacks;
    c->confidence = std::max(c->confidence, s.score);
  }
  std::stable_sort(cs.begin(), cs.end(), [](const Candidate& a, const Candidate& b) {
    if (rank(a.verdict) != rank(b.verdict)) return rank(a.verdict) > rank(b.verdict);
    if (a.verdict == Verdict::kLeak && a.bytes_per_s != b.bytes_per_s)
      return a.bytes_per_s > b.bytes_per_s;
    return a.bytes > b.bytes;
  });
  return cs;
}

std::vector<Candidate> growth_candidates(const GrowthReport& r, double* total) {
  std::vector<Candidate> cs;
  *total = 0;
  const double span = std::max(r.duration_s, 1e-3);
  for (const GrowthStack& s : r.stacks) {
    if (s.growth_bytes <= 0) continue;
    *total += s.growth_bytes;
    auto i = culprit_index(s.frames);
    if (!i) continue;
    Candidate* c = find_or_add(cs, s.frames[*i]);
    c->bytes += s.growth_bytes;
    c->bytes_per_s += s.growth_bytes / span;
    ++c->stacks;
  }
  std::stable_sort(cs.begin(), cs.end(),
                   [](const Candidate& a, const Candidate& b) { return a.bytes > b.bytes; });
  return cs;
}

std::string bytes_text(double b) { return analysis::format_bytes(b); }

std::string allocation_part(const Candidate& a) {
  return fmt::format("allocation trace: {} outstanding in {} stack{} of {}, {}{}/s ({}{}{})",
                     bytes_text(a.bytes), a.stacks, a.stacks == 1 ? "" : "s", label(a.frame),
                     a.bytes_per_s >= 0 ? "+" : "-", bytes_text(std::abs(a.bytes_per_s)),
                     to_string(a.verdict), a.verdict_reason.empty() ? "" : ": ",
                     a.verdict_reason);
}

std::string growth_part(const Candidate& g, double total) {
  return fmt::format("growth step: {} grew {} of the {} resident growth it traced ({:.0f}%)",
                     label(g.frame), bytes_text(g.bytes), bytes_text(total),
                     total > 0 ? 100 * g.bytes / total : 0.0);
}

void set_place(Finding& f, const Candidate& c) {
  f.function = label(c.frame);
  f.module = c.frame.module;
  // The line of an address whose innermost code is an inlined standard-library function
  // is that library's header line: not a place in the program worth pointing at.
  if (!c.frame.file.starts_with("/usr/include/")) {
    f.file = c.frame.file;
    f.line = c.frame.line;
  }
}

}  // namespace

std::string alert_level(Verdict verdict, double bytes, double bytes_per_s) {
  const double hourly = std::max(0.0, bytes_per_s) * kHour;
  if (verdict == Verdict::kCache || verdict == Verdict::kTransient)
    return bytes > kHighSeverityMb * kBytesPerMb ? "medium" : "low";
  if (bytes > kHighSeverityMb * kBytesPerMb || hourly > kHighSeverityMb * kBytesPerMb)
    return "high";
  if (verdict == Verdict::kLeak || bytes > kMediumBytes || hourly > kMediumBytes) return "medium";
  return "low";
}

std::optional<Finding> make_finding(const FindingInputs& in) {
  std::vector<Candidate> alloc;
  if (in.allocations) alloc = allocation_candidates(*in.allocations);
  double growth_total = 0;
  std::vector<Candidate> growth;
  if (in.growth) growth = growth_candidates(*in.growth, &growth_total);
  if (alloc.empty() && growth.empty()) return std::nullopt;

  const Candidate* a = alloc.empty() ? nullptr : &alloc.front();
  const Candidate* g = growth.empty() ? nullptr : &growth.front();
  Finding f;
  std::vector<std::string> parts;
  if (a && (a->verdict == Verdict::kLeak || !g)) {
    // The allocation trace knows which memory stays: its leak (or, alone, its best guess).
    set_place(f, *a);
    f.bytes = a->bytes;
    f.bytes_per_s = a->bytes_per_s;
    f.verdict = a->verdict;
    f.confidence = a->confidence;
    f.seen_by.push_back("allocation trace");
    parts.push_back(allocation_part(*a));
    if (g) {
      const bool same = key(g->frame) == key(a->frame);
      f.agreement = same ? "agree" : "disagree";
      if (same) f.seen_by.push_back("growth step");
      parts.push_back(growth_part(*g, growth_total));
    }
  } else {
    // The growth step saw resident memory grow; the allocation trace, when it saw the same
    // function, says what kind of growth it is.
    set_place(f, *g);
    f.bytes = g->bytes;
    f.bytes_per_s = g->bytes_per_s;
    f.seen_by.push_back("growth step");
    const Candidate* same = nullptr;
    for (const Candidate& c : alloc)
      if (key(c.frame) == key(g->frame)) same = &c;
    if (same) {
      f.verdict = same->verdict;
      f.confidence = same->confidence;
      f.seen_by.insert(f.seen_by.begin(), "allocation trace");
      f.agreement = same == a ? "agree" : "disagree";
      parts.push_back(growth_part(*g, growth_total));
      parts.push_back(allocation_part(*same));
    } else {
      // Alone, growth cannot tell a leak from a structure filling up: half the confidence
      // its share of the growth would give.
      f.verdict = Verdict::kUnknown;
      f.confidence = growth_total > 0 ? 0.5 * g->bytes / growth_total : 0;
      parts.push_back(growth_part(*g, growth_total));
      if (a) {
        f.agreement = "disagree";
        parts.push_back(allocation_part(*a));
      }
    }
  }
  if (!in.allocations && !in.allocations_missing.empty())
    parts.push_back("allocation trace: " + in.allocations_missing);
  else if (in.allocations && alloc.empty())
    parts.push_back("allocation trace: no outstanding allocations sampled");
  if (!in.allocations_stopped.empty()) parts.push_back(in.allocations_stopped);
  if (!in.growth && !in.growth_missing.empty()) parts.push_back("growth step: " + in.growth_missing);
  if (f.agreement == "disagree") parts.push_back("the steps name different functions");
  f.alert_level = alert_level(f.verdict, f.bytes, f.bytes_per_s);
  for (size_t i = 0; i < parts.size(); ++i) f.reason += (i ? "; " : "") + parts[i];
  return f;
}

std::string describe_finding(const Finding& f) {
  std::string seen;
  for (size_t i = 0; i < f.seen_by.size(); ++i)
    seen += (i == 0 ? "" : i + 1 == f.seen_by.size() ? " and " : ", ") + f.seen_by[i];
  return fmt::format("{} in {}{}{}: {}, {}{}/s, confidence {:.2f}, alert {}; seen by {}{}",
                     to_string(f.verdict), f.function,
                     f.module.empty() ? "" : " (" + f.module + ")",
                     f.file.empty() ? "" : fmt::format(" at {}:{}", f.file, f.line),
                     bytes_text(f.bytes), f.bytes_per_s >= 0 ? "+" : "-",
                     bytes_text(std::abs(f.bytes_per_s)), f.confidence, f.alert_level, seen,
                     f.agreement.empty() ? "" : " (" + f.agreement + ")");
}

}  // namespace leakwatch::report
