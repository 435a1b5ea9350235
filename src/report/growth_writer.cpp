#include "report/growth_writer.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "report/folded_writer.h"
#include "report/frame_format.h"
#include "report/html_writer.h"
#include "report/pprof_writer.h"

namespace leakwatch::report {

namespace {

using Json = nlohmann::ordered_json;

std::string integer(double v) { return fmt::format("{}", round_to_i64(v)); }

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

// 1536 -> "1.5 KiB": the summary lines are for people; stack lines keep exact integers.
std::string human_bytes(double v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double a = std::fabs(v);
  int u = 0;
  while (a >= 1024 && u < 4) {
    a /= 1024;
    v /= 1024;
    u++;
  }
  return u == 0 ? fmt::format("{} B", round_to_i64(v)) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string rss_text(const char* name, const RssFigure& r) {
  if (!r.seen) return fmt::format("{} -", name);
  return fmt::format("{} {} -> {} (peak {})", name, human_bytes(static_cast<double>(r.first)),
                     human_bytes(static_cast<double>(r.current)),
                     human_bytes(static_cast<double>(r.peak)));
}

void append_stack(std::string& out, const GrowthReport& r, const GrowthStack& s) {
  out += fmt::format("\t{} bytes faulted (anonymous, {} faults), {} bytes mapped, from stack\n",
                     integer(s.faulted_bytes.estimate), integer(s.faults.estimate),
                     integer(s.mapped_bytes));
  for (const Frame& f : s.frames)
    out += fmt::format("\t\t0x{:016x}\t{}\n", f.address, bcc_symbol(f, false));
  if (r.sample_period > 1 && s.faulted_bytes.sampled > 0)
    out += fmt::format("\t  estimated from 1 in {} fault stacks (95% CI {}-{} bytes)\n",
                       r.sample_period, integer(s.faulted_bytes.ci_lo),
                       integer(s.faulted_bytes.ci_hi));
  std::string also;
  if (s.file_faulted_bytes.estimate > 0)
    also += fmt::format("{} bytes of file-backed faults", integer(s.file_faulted_bytes.estimate));
  if (s.file_mapped_bytes > 0)
    also += fmt::format("{}{} bytes of file mappings", also.empty() ? "" : "; ",
                        integer(s.file_mapped_bytes));
  if (s.brk_bytes > 0)
    also += fmt::format("{}{} of the mapped bytes by brk", also.empty() ? "" : "; ",
                        integer(s.brk_bytes));
  if (!also.empty()) out += "\t  also: " + also + "\n";
}

Json number(double v) {
  if (!std::isfinite(v)) return nullptr;
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) return static_cast<int64_t>(v);
  return v;
}

Json estimate_json(const Estimate& e) {
  return Json{{"sampled", number(e.sampled)},
              {"estimate", number(e.estimate)},
              {"ci95", Json::array({number(e.ci_lo), number(e.ci_hi)})}};
}

Json frame_json(const Frame& f) {
  return Json{{"address", fmt::format("{:#x}", f.address)},
              {"function", f.function},
              {"module", f.module},
              {"module_path", f.module_path},
              {"build_id", f.build_id},
              {"offset", f.offset},
              {"module_offset", f.module_offset},
              {"file", f.file},
              {"line", f.line},
              {"inlined", f.inlined}};
}

Json rss_json(const RssFigure& r) {
  if (!r.seen) return nullptr;
  return Json{{"first", r.first}, {"current", r.current}, {"peak", r.peak}};
}

}  // namespace

std::string write_growth_text(const GrowthReport& r, const GrowthTextOptions& options) {
  std::string who;
  if (!r.target.cgroup.empty())
    who = fmt::format("cgroup {}", r.target.cgroup);
  else
    who = fmt::format("pid {} {}", r.target.pid, r.target.comm);
  std::string out = fmt::format("[{}] Top {} stacks by memory growth ({}, {:.1f} s):\n",
                                options.time_hhmmss, options.top, who, r.duration_s);
  const size_t top = static_cast<size_t>(std::max(options.top, 0));
  for (size_t i = 0; i < r.stacks.size() && i < top; ++i) append_stack(out, r, r.stacks[i]);

  for (const GrowthProcess& p : r.processes)
    out += fmt::format("RSS pid {} {}: {}, {}, {}, {}\n", p.pid, p.comm,
                       rss_text("anon", p.rss_anon), rss_text("file", p.rss_file),
                       rss_text("shmem", p.rss_shmem), rss_text("swap", p.rss_swap));
  const GrowthTotals& t = r.totals;
  out += fmt::format("faults: {} ({}anonymous {}, file {}, unknown {}); {} stacks captured",
                     t.faults, t.classes_estimated ? "estimated: " : "",
                     integer(t.anon_faults), integer(t.file_faults), integer(t.unknown_faults),
                     t.sampled_faults);
  if (r.sample_period > 1) out += fmt::format(" (1 in {})", r.sample_period);
  out += fmt::format("; anonymous faulted {}\n", human_bytes(t.faulted_bytes));
  out += fmt::format(
      "mappings: {} mmap, {} munmap, {} mremap, {} brk calls; anonymous still mapped {} "
      "(brk {}), file mappings {}\n",
      t.mmap_calls, t.munmap_calls, t.mremap_calls, t.brk_calls, human_bytes(t.mapped_bytes),
      human_bytes(t.brk_bytes), human_bytes(t.file_mapped_bytes));
  std::string lost;
  for (const auto& [name, value] : r.lost)
    if (value != 0) lost += fmt::format(" {}={}", name, value);
  if (!lost.empty()) out += "lost:" + lost + "\n";
  for (const std::string& note : r.notes) out += "note: " + one_line(note) + "\n";
  return out;
}

std::string write_growth_json(const GrowthReport& r) {
  Json target{{"pid", r.target.pid}, {"comm", r.target.comm}};
  if (!r.target.cgroup.empty()) target["cgroup"] = r.target.cgroup;
  Json stacks = Json::array();
  for (const GrowthStack& s : r.stacks) {
    Json frames = Json::array();
    for (const Frame& f : s.frames) frames.push_back(frame_json(f));
    stacks.push_back(Json{{"stack_id", s.stack_id},
                          {"pid", s.pid},
                          {"frames", std::move(frames)},
                          {"faulted_bytes", estimate_json(s.faulted_bytes)},
                          {"faults", estimate_json(s.faults)},
                          {"file_faulted_bytes", estimate_json(s.file_faulted_bytes)},
                          {"mapped_bytes", number(s.mapped_bytes)},
                          {"mapped_regions", s.mapped_regions},
                          {"brk_bytes", number(s.brk_bytes)},
                          {"file_mapped_bytes", number(s.file_mapped_bytes)},
                          {"growth_bytes", number(s.growth_bytes)}});
  }
  Json processes = Json::array();
  for (const GrowthProcess& p : r.processes)
    processes.push_back(Json{{"pid", p.pid},
                             {"comm", p.comm},
                             {"rss",
                              Json{{"anon", rss_json(p.rss_anon)},
                                   {"file", rss_json(p.rss_file)},
                                   {"shmem", rss_json(p.rss_shmem)},
                                   {"swap", rss_json(p.rss_swap)}}}});
  const GrowthTotals& t = r.totals;
  Json totals{{"faults", t.faults},
              {"anon_faults", number(t.anon_faults)},
              {"file_faults", number(t.file_faults)},
              {"unknown_faults", number(t.unknown_faults)},
              {"classes_estimated", t.classes_estimated},
              {"sampled_faults", t.sampled_faults},
              {"faulted_bytes", number(t.faulted_bytes)},
              {"mapped_bytes", number(t.mapped_bytes)},
              {"brk_bytes", number(t.brk_bytes)},
              {"file_mapped_bytes", number(t.file_mapped_bytes)},
              {"mmap_calls", t.mmap_calls},
              {"munmap_calls", t.munmap_calls},
              {"mremap_calls", t.mremap_calls},
              {"brk_calls", t.brk_calls}};
  Json lost = Json::object();
  for (const auto& [name, value] : r.lost) lost[name] = value;
  Json out{{"version", r.version},
           {"kind", "growth"},
           {"target", std::move(target)},
           {"sample_period", r.sample_period},
           {"page_size", r.page_size},
           {"stack_walker", r.stack_walker},
           {"duration_s", number(r.duration_s)},
           {"timestamp_unix_ms", r.timestamp_unix_ms},
           {"final", r.final},
           {"stacks", std::move(stacks)},
           {"processes", std::move(processes)},
           {"totals", std::move(totals)},
           {"lost", std::move(lost)},
           {"notes", r.notes}};
  return out.dump(2) + "\n";
}

Report growth_as_report(const GrowthReport& r) {
  Report out;
  out.target = r.target;
  out.sampling = r.sample_period > 1 ? Sampling{SamplingMode::kCalls, r.sample_period}
                                     : Sampling{SamplingMode::kExact, 1};
  out.duration_s = r.duration_s;
  out.timestamp_unix_ms = r.timestamp_unix_ms;
  out.final = r.final;
  out.lost = r.lost;
  out.notes = r.notes;
  for (const GrowthStack& g : r.stacks) {
    StackReport s;
    s.stack_id = g.stack_id;
    s.frames = g.frames;
    s.bytes = Estimate{g.growth_bytes, g.growth_bytes, g.growth_bytes, g.growth_bytes};
    out.stacks.push_back(std::move(s));
  }
  return out;
}

Result<std::string> render_growth(const GrowthReport& r, Format format,
                                  const GrowthTextOptions& text_options) {
  switch (format) {
    case Format::kJson: return write_growth_json(r);
    case Format::kFolded: return write_folded(growth_as_report(r));
    case Format::kPprof: {
      PprofSampleTypes types;
      types.types = {{"faulted_bytes", "bytes"}, {"mapped_bytes", "bytes"}, {"faults", "count"}};
      types.default_type = "faulted_bytes";
      for (const GrowthStack& s : r.stacks)
        types.values.push_back({round_to_i64(s.faulted_bytes.estimate),
                                round_to_i64(s.mapped_bytes), round_to_i64(s.faults.estimate)});
      types.sampling_comment =
          r.sample_period > 1
              ? fmt::format("sampling: 1 in {} page-fault stacks captured; faulted_bytes and "
                            "faults are estimates (sampled x {}); mapped_bytes is exact",
                            r.sample_period, r.sample_period)
              : "sampling: every page-fault stack captured; all values exact";
      return write_pprof(growth_as_report(r), types);
    }
    case Format::kHtml: return write_growth_html(r);
    case Format::kText: break;
  }
  return write_growth_text(r, text_options);
}

}  // namespace leakwatch::report
