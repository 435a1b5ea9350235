#include "report/html_writer.h"

#include <cstdint>
#include <limits>
#include <map>
#include <type_traits>
#include <tuple>

#include <fmt/format.h>

#include "report/culprit.h"
#include "report/finding.h"
#include "report/growth_writer.h"
#include "report/html.h"
#include "report/json_writer.h"

namespace leakwatch::report {
namespace {

using Json = nlohmann::ordered_json;

// o[key] when o is an object holding a value of T's kind, else `def`.  The growth reports
// rendered here may be any JSON whose "kind" is "growth" (`leakwatch report FILE`): a field
// of another type or a stack that is not an object must not throw out of the writer.
template <typename T>
T field(const Json& o, const char* key, T def) {
  if (!o.is_object()) return def;
  auto it = o.find(key);
  if (it == o.end()) return def;
  if constexpr (std::is_same_v<T, Json>) {
    return *it;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : def;
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) return def;
    if (it->is_number_unsigned())
      return it->template get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())
                 ? def
                 : it->template get<T>();
    const int64_t v = it->template get<int64_t>();
    return v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                   v > static_cast<int64_t>(std::numeric_limits<T>::max())
               ? def
               : static_cast<T>(v);
  } else {
    return it->is_string() ? it->template get<std::string>() : def;
  }
}
std::string field(const Json& o, const char* key, const char* def) {
  return field(o, key, std::string(def));
}

// Each distinct frame once, in first-seen order.
class FrameTable {
 public:
  // The index of `frame` (a JSON frame of the reports), and the bytes its entry added.
  std::pair<size_t, size_t> intern(const Json& frame) {
    Json entry = Json::array({field(frame, "function", ""), field(frame, "module", ""),
                              field(frame, "file", ""), field(frame, "line", 0)});
    std::string key = entry.dump(-1, ' ', false, Json::error_handler_t::replace);
    auto [it, inserted] = index_.try_emplace(key, frames_.size());
    if (!inserted) return {it->second, 4};
    frames_.push_back(std::move(entry));
    return {it->second, key.size() + 4};
  }
  Json take() { return std::move(frames_); }

 private:
  std::map<std::string, size_t> index_;
  Json frames_ = Json::array();
};

// [estimate, lo, hi, sampled] of a JSON estimate {sampled, estimate, ci95: [lo, hi]}.
Json estimate(const Json& e) {
  if (!e.is_object()) return Json::array({0, 0, 0, 0});
  Json est = field(e, "estimate", Json(0));
  Json lo = est, hi = est;
  if (auto ci = e.find("ci95"); ci != e.end() && ci->is_array() && ci->size() == 2) {
    lo = (*ci)[0];
    hi = (*ci)[1];
  }
  return Json::array({est, lo, hi, field(e, "sampled", Json(0))});
}

std::string id_string(const Json& v) {
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_string()) return v.get<std::string>();
  return "0";
}

Json copy_or_null(const Json& o, const char* key) {
  auto it = o.find(key);
  return it == o.end() ? Json(nullptr) : *it;
}

double number_or_zero(const Json& v) { return v.is_number() ? v.get<double>() : 0; }

// Adds the report's stacks, largest first as the report orders them, while the data stays
// within `budget`; the others are counted in "omitted" (with `bytes_of` their bytes).
template <typename MakeEntry, typename BytesOf>
void add_stacks(const Json& report, Json& out, size_t budget, MakeEntry make_entry,
                BytesOf bytes_of) {
  FrameTable frames;
  Json stacks = Json::array();
  size_t used = 0;
  uint64_t omitted = 0;
  double omitted_bytes = 0;
  if (auto it = report.find("stacks"); it != report.end() && it->is_array()) {
    for (const Json& s : *it) {
      if (used > budget) {
        ++omitted;
        omitted_bytes += bytes_of(s);
        continue;
      }
      Json entry = make_entry(s);
      Json refs = Json::array();
      std::vector<Frame> named;  // function and module: what the culprit is chosen by
      if (auto f = s.find("frames"); f != s.end() && f->is_array()) {
        for (const Json& frame : *f) {
          auto [index, cost] = frames.intern(frame);
          refs.push_back(index);
          used += cost;
          Frame& n = named.emplace_back();
          n.function = field(frame, "function", "");
          n.module = field(frame, "module", "");
        }
      }
      entry["f"] = std::move(refs);
      // The frame the page names the stack after: the finding's rule, not a second one.
      entry["n"] = culprit_index(named).value_or(0);
      used += entry.dump().size();
      stacks.push_back(std::move(entry));
    }
  }
  out["frames"] = frames.take();
  out["stacks"] = std::move(stacks);
  out["omitted"] = Json{{"stacks", omitted}, {"bytes", omitted_bytes}};
}

Json page_timeline(const Json& t) {
  if (!t.is_object()) return nullptr;
  Json out = t;
  if (auto s = out.find("stacks"); s != out.end() && s->is_array())
    for (Json& series : *s)
      if (series.is_object()) series["stack_id"] = id_string(field(series, "stack_id", Json(0)));
  return out;
}

std::string target_title(const Json& target) {
  if (!target.is_object()) return "";
  if (field(target, "kernel", false)) return "the kernel";
  std::string comm = field(target, "comm", "");
  int pid = field(target, "pid", 0);
  std::string cgroup = field(target, "cgroup", "");
  std::string out = comm;
  if (pid > 0) out += out.empty() ? fmt::format("pid {}", pid) : fmt::format(" (pid {})", pid);
  if (!cgroup.empty()) out += (out.empty() ? "" : ", ") + std::string("cgroup ") + cgroup;
  return out;
}

constexpr const char* kNoScript =
    "<noscript><p>This report is drawn by its embedded script: allow JavaScript for this "
    "file (it loads nothing from the network), or read the JSON report.</p></noscript>";

std::string page(const std::string& title, Json doc) {
  doc["title"] = title;
  return html_document(title, kNoScript, &doc);
}

}  // namespace

Json html_report_data(const Json& r, size_t budget) {
  Json out{{"target", copy_or_null(r, "target")},
           {"sampling", copy_or_null(r, "sampling")},
           {"duration_s", copy_or_null(r, "duration_s")},
           {"timestamp_unix_ms", copy_or_null(r, "timestamp_unix_ms")},
           {"final", field(r, "final", false)},
           {"diff", false}};
  add_stacks(
      r, out, budget,
      [](const Json& s) {
        return Json{{"id", id_string(field(s, "stack_id", Json(0)))},
                    {"tr", field(s, "truncated", false)},
                    {"b", estimate(copy_or_null(s, "bytes"))},
                    {"c", estimate(copy_or_null(s, "count"))},
                    {"ab", estimate(copy_or_null(s, "alloc_bytes"))},
                    {"ac", estimate(copy_or_null(s, "alloc_count"))},
                    {"v", field(s, "verdict", "unknown")},
                    {"s", copy_or_null(s, "score")},
                    {"r", field(s, "reason", "")},
                    {"g", copy_or_null(s, "growth_bytes_per_s")},
                    {"o", copy_or_null(s, "oldest_age_s")}};
      },
      [](const Json& s) {
        auto b = s.find("bytes");
        return b != s.end() && b->is_object() ? number_or_zero(field(*b, "estimate", Json(0))) : 0.0;
      });
  out["lost"] = field(r, "lost", Json::object());
  out["notes"] = field(r, "notes", Json::array());
  out["finding"] = copy_or_null(r, "finding");
  out["timeline"] = page_timeline(copy_or_null(r, "timeline"));
  return out;
}

Json html_growth_data(const Json& g, size_t budget) {
  Json out{{"target", copy_or_null(g, "target")},
           {"sample_period", field(g, "sample_period", 1)},
           {"page_size", field(g, "page_size", 4096)},
           {"stack_walker", field(g, "stack_walker", "")},
           {"duration_s", copy_or_null(g, "duration_s")},
           {"timestamp_unix_ms", copy_or_null(g, "timestamp_unix_ms")},
           {"final", field(g, "final", false)}};
  add_stacks(
      g, out, budget,
      [](const Json& s) {
        return Json{{"id", id_string(field(s, "stack_id", Json(0)))},
                    {"pid", field(s, "pid", 0)},
                    {"fb", estimate(copy_or_null(s, "faulted_bytes"))},
                    {"fl", estimate(copy_or_null(s, "faults"))},
                    {"ffb", estimate(copy_or_null(s, "file_faulted_bytes"))},
                    {"mb", copy_or_null(s, "mapped_bytes")},
                    {"mr", copy_or_null(s, "mapped_regions")},
                    {"bb", copy_or_null(s, "brk_bytes")},
                    {"fmb", copy_or_null(s, "file_mapped_bytes")},
                    {"gb", copy_or_null(s, "growth_bytes")}};
      },
      [](const Json& s) { return number_or_zero(field(s, "growth_bytes", Json(0))); });
  out["processes"] = field(g, "processes", Json::array());
  out["totals"] = field(g, "totals", Json::object());
  out["lost"] = field(g, "lost", Json::object());
  out["notes"] = field(g, "notes", Json::array());
  out["finding"] = copy_or_null(g, "finding");
  return out;
}

std::string write_html(const Report& report) {
  // A report of its own (memleak, report): its finding is the allocation trace's.
  Report with_finding = report;
  if (!with_finding.finding) {
    FindingInputs in;
    in.allocations = &report;
    with_finding.finding = make_finding(in);
  }
  Json r = Json::parse(write_json(with_finding), nullptr, false);
  std::string who = target_title(copy_or_null(r, "target"));
  return page(who.empty() ? "Memory leak report" : "Memory leaks of " + who,
              Json{{"format", 1}, {"kind", "memleak"}, {"memleak", html_report_data(r)}});
}

std::string write_diff_html(const Report& diff) {
  Json r = Json::parse(write_json(diff), nullptr, false);
  Json data = html_report_data(r);
  data["diff"] = true;
  std::string who = target_title(copy_or_null(r, "target"));
  return page(who.empty() ? "Change between two reports" : "Change between two reports of " + who,
              Json{{"format", 1}, {"kind", "diff"}, {"memleak", std::move(data)}});
}

std::string write_growth_html(const GrowthReport& report) {
  Json g = Json::parse(write_growth_json(report), nullptr, false);
  FindingInputs in;
  in.growth = &report;
  if (auto f = make_finding(in); f && !g.contains("finding"))
    g["finding"] = Json::parse(write_finding_json(*f), nullptr, false);
  return write_growth_html(g);
}

std::string write_growth_html(const Json& g) {
  std::string who = target_title(copy_or_null(g, "target"));
  return page(who.empty() ? "Memory growth report" : "Memory growth of " + who,
              Json{{"format", 1}, {"kind", "growth"}, {"growth", html_growth_data(g)}});
}

std::string write_investigation_html(const Json& investigation, const Json& report,
                                     const Json& growth) {
  const Json request = field(investigation, "request", Json::object());
  std::string who = field(request, "comm", "");
  if (int pid = field(request, "pid", 0); pid > 0)
    who += who.empty() ? fmt::format("pid {}", pid) : fmt::format(" (pid {})", pid);
  Json doc{{"format", 1},
           {"kind", "investigation"},
           {"investigation", investigation},
           {"memleak", report.is_object() ? html_report_data(report) : Json(nullptr)},
           {"growth", growth.is_object() ? html_growth_data(growth) : Json(nullptr)}};
  return page("Investigation of " + (who.empty() ? std::string("a process") : who), std::move(doc));
}

}  // namespace leakwatch::report
