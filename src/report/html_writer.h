// The HTML report: one self-contained page (report/html.h) per allocation report, growth
// report, diff of two reports, or agent investigation, drawn in the browser by the embedded
// script (web/src): summary and finding, flame graph (icicle), timeline, sortable stacks.
//
// The page's data is a compact form of the JSON reports (json_writer.h, growth_writer.h):
//   {format: 1, kind: memleak|diff|growth|investigation, title,
//    memleak?: {target, sampling, duration_s, timestamp_unix_ms, final, diff,
//               frames: [[function, module, file, line], ...]   each distinct frame once,
//               stacks: [{id, f: [frame index, innermost first], tr, b, c, ab, ac
//                         ([estimate, ci95 lo, ci95 hi, sampled]), v, s, r, g, o}],
//               lost, notes, finding, timeline, omitted: {stacks, bytes}},
//    growth?: {target, sample_period, duration_s, ..., frames, stacks: [{id, pid, f, fb, fl,
//              ffb, mb, mr, bb, fmb, gb}], processes, totals, lost, notes, finding, omitted},
//    investigation?: investigation.json as the agent stores it}
// Stack ids are strings (they do not fit JavaScript's exact integers).  Stacks are kept
// largest first until the page's data reaches kHtmlDataBudget; the rest are counted in
// `omitted` and the page says so.
//
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "report/growth_report.h"
#include "report/model.h"

namespace leakwatch::report {

inline constexpr size_t kHtmlDataBudget = 768 * 1024;

std::string write_html(const Report& report);
// A report made by diff_reports: changes, coloured by growth and shrinkage.
std::string write_diff_html(const Report& diff);
std::string write_growth_html(const GrowthReport& report);
// The same from its JSON (write_growth_json's), as `leakwatch report` reads it.
std::string write_growth_html(const nlohmann::ordered_json& growth);

// The page data of a report given as its JSON (write_json's or write_growth_json's).
nlohmann::ordered_json html_report_data(const nlohmann::ordered_json& report,
                                        size_t budget = kHtmlDataBudget);
nlohmann::ordered_json html_growth_data(const nlohmann::ordered_json& growth,
                                        size_t budget = kHtmlDataBudget);

// An agent investigation: investigation.json and, when stored, the allocation trace's and
// the growth step's JSON reports (null when absent).
std::string write_investigation_html(const nlohmann::ordered_json& investigation,
                                     const nlohmann::ordered_json& report,
                                     const nlohmann::ordered_json& growth);

}  // namespace leakwatch::report
