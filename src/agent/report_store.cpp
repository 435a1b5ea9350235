#include "agent/report_store.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/log.h"
#include "report/culprit.h"
#include "report/finding.h"
#include "report/frame_format.h"
#include "report/growth_writer.h"
#include "report/json_writer.h"
#include "report/pprof_writer.h"
#include "report/text_writer.h"

namespace leakwatch::agent {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s)
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                          c == '.'
                      ? c
                      : '_');
  return out.empty() ? "process" : out;
}

std::string utc_stamp(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  tm t{};
  ::gmtime_r(&secs, &t);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
}

// The function a stack is charged to (report/culprit.h), "" when every frame is runtime.
std::string culprit_name(const std::vector<report::Frame>& frames) {
  auto i = report::culprit_index(frames);
  return i ? report::frame_label(frames[*i]) : "";
}

json growth_to_json(const StoredGrowth& g) {
  return json{{"outcome", g.outcome},
              {"error", g.error},
              {"duration_s", g.duration_s},
              {"stacks", g.stacks},
              {"top_function", g.top_function},
              {"top_bytes", g.top_bytes},
              {"faulted_bytes", g.faulted_bytes},
              {"mapped_bytes", g.mapped_bytes},
              {"lost", g.lost}};
}

// Reads index.json's entries with every type checked: json::value() throws on a field of
// the wrong type and casts a float such as 1e300 into an int without a word.  The first
// problem is kept, naming the field.
class EntryReader {
 public:
  explicit EntryReader(const json& j, std::string path = "") : j_(j), path_(std::move(path)) {}
  const std::string& error() const { return error_; }

  std::string str(const char* key) {
    const json* v = find(key);
    if (v == nullptr) return "";
    if (!v->is_string()) return bad(key, "expected a string"), "";
    return v->get<std::string>();
  }

  double number(const char* key) {
    const json* v = find(key);
    if (v == nullptr || v->is_null()) return 0;
    if (!v->is_number()) return bad(key, "expected a number"), 0;
    return v->get<double>();
  }

  template <typename T>
  T integer(const char* key) {
    const json* v = find(key);
    if (v == nullptr) return 0;
    if (v->is_number_unsigned()) {
      if (std::in_range<T>(v->get<uint64_t>())) return static_cast<T>(v->get<uint64_t>());
    } else if (v->is_number_integer()) {
      if (std::in_range<T>(v->get<int64_t>())) return static_cast<T>(v->get<int64_t>());
    } else if (v->is_number_float()) {
      double d = v->get<double>();
      if (d == std::trunc(d) && std::fabs(d) < 9007199254740992.0 &&
          std::in_range<T>(static_cast<int64_t>(d)))
        return static_cast<T>(d);
    }
    return bad(key, "expected an integer in range"), 0;
  }

  std::vector<std::string> strings(const char* key) {
    const json* v = find(key);
    std::vector<std::string> out;
    if (v == nullptr) return out;
    if (!v->is_array()) return bad(key, "expected a list of strings"), out;
    for (const json& e : *v) {
      if (!e.is_string()) return bad(key, "expected a list of strings"), std::vector<std::string>{};
      out.push_back(e.get<std::string>());
    }
    return out;
  }

 private:
  const json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  void bad(const char* key, const char* what) {
    if (error_.empty()) error_ = fmt::format("{}{}: {}", path_, key, what);
  }
  const json& j_;
  std::string path_;
  std::string error_;
};

Result<StoredGrowth> growth_from_json(const json& j) {
  EntryReader in(j, "growth.");
  StoredGrowth g;
  g.outcome = in.str("outcome");
  g.error = in.str("error");
  g.duration_s = in.number("duration_s");
  g.stacks = in.integer<size_t>("stacks");
  g.top_function = in.str("top_function");
  g.top_bytes = in.number("top_bytes");
  g.faulted_bytes = in.number("faulted_bytes");
  g.mapped_bytes = in.number("mapped_bytes");
  g.lost = in.integer<uint64_t>("lost");
  if (!in.error().empty()) return fail("{}", in.error());
  return g;
}

json sampling_json(const report::Sampling& s) {
  return json{{"mode", report::to_string(s.mode)}, {"rate", s.rate}};
}

// report.txt's first lines: the conclusion before the stacks it came from.
std::string finding_text(const std::optional<report::Finding>& f) {
  if (!f) return "Finding: none (no outstanding allocations and no growth were seen)\n\n";
  return fmt::format("Finding: {}\n  {}\n\n", report::describe_finding(*f), f->reason);
}

StoredGrowth summarize(const GrowthStep& step) {
  StoredGrowth g;
  g.outcome = step.outcome;
  g.error = step.error;
  if (!step.result) return g;
  const report::GrowthReport& rep = step.result->report;
  g.duration_s = rep.duration_s;
  g.stacks = rep.stacks.size();
  g.faulted_bytes = rep.totals.faulted_bytes;
  g.mapped_bytes = rep.totals.mapped_bytes;
  for (auto& [name, n] : rep.lost) g.lost += n;
  if (!rep.stacks.empty()) {
    g.top_bytes = rep.stacks.front().growth_bytes;
    g.top_function = culprit_name(rep.stacks.front().frames);
  }
  return g;
}

json workload_to_json(const WorkloadLabels& w) {
  if (w.empty()) return nullptr;
  return json{{"namespace", w.k8s_namespace}, {"pod", w.pod},
              {"pod_uid", w.pod_uid},         {"container", w.container},
              {"container_name", w.container_name}, {"runtime", w.runtime}};
}

WorkloadLabels workload_from_json(const json& j) {
  WorkloadLabels w;
  if (!j.is_object()) return w;
  w.k8s_namespace = j.value("namespace", "");
  w.pod = j.value("pod", "");
  w.pod_uid = j.value("pod_uid", "");
  w.container = j.value("container", "");
  w.container_name = j.value("container_name", "");
  w.runtime = j.value("runtime", "");
  return w;
}

json to_json(const StoredReport& r) {
  return json{{"id", r.id},
              {"started_unix_ms", r.started_unix_ms},
              {"finished_unix_ms", r.finished_unix_ms},
              {"target", r.target},
              {"pid", r.pid},
              {"comm", r.comm},
              {"reason", r.reason},
              {"end", r.end},
              {"memleak_error", r.memleak_error},
              {"duration_s", r.duration_s},
              {"sampling", sampling_json(r.sampling)},
              {"overhead_percent", r.overhead_percent},
              {"stacks", r.stacks},
              {"top_function", r.top_function},
              {"top_bytes", r.top_bytes},
              {"lost", r.lost},
              {"growth", r.growth ? growth_to_json(*r.growth) : json(nullptr)},
              {"finding", r.finding ? json::parse(report::write_finding_json(*r.finding))
                                    : json(nullptr)},
              {"workload", workload_to_json(r.workload)},
              {"files", r.files}};
}

// An id names a subdirectory of reports_dir, which pruning removes: it must be one plain
// path component (an index.json saying "../x" must not make the agent delete outside it);
// likewise the file names the HTTP API serves.
bool plain_component(const std::string& id) {
  return !id.empty() && id != "." && id != ".." && id.find('/') == std::string::npos &&
         id.find('\0') == std::string::npos;
}

Result<StoredReport> from_json(const json& j) {
  EntryReader in(j);
  StoredReport r;
  r.id = in.str("id");
  r.started_unix_ms = in.integer<int64_t>("started_unix_ms");
  r.finished_unix_ms = in.integer<int64_t>("finished_unix_ms");
  r.target = in.str("target");
  r.pid = in.integer<int>("pid");
  r.comm = in.str("comm");
  r.reason = in.str("reason");
  r.end = in.str("end");
  r.memleak_error = in.str("memleak_error");
  r.duration_s = in.number("duration_s");
  r.overhead_percent = in.number("overhead_percent");
  r.stacks = in.integer<size_t>("stacks");
  r.top_function = in.str("top_function");
  r.top_bytes = in.number("top_bytes");
  r.lost = in.integer<uint64_t>("lost");
  r.files = in.strings("files");
  if (!in.error().empty()) return fail("{}", in.error());
  if (!plain_component(r.id)) return fail("id: not a plain directory name");
  for (const std::string& file : r.files)
    if (!plain_component(file)) return fail("files: \"{}\" is not a plain file name", file);
  if (auto g = j.find("growth"); g != j.end() && !g->is_null()) {
    if (!g->is_object()) return fail("growth: expected an object");
    auto growth = growth_from_json(*g);
    if (!growth) return std::unexpected(growth.error());
    r.growth = std::move(*growth);
  }
  if (auto w = j.find("workload"); w != j.end()) r.workload = workload_from_json(*w);
  if (auto sp = j.find("sampling"); sp != j.end() && sp->is_object()) {
    EntryReader sr(*sp, "sampling");
    auto mode = report::sampling_mode_from_string(sr.str("mode"));
    if (!mode) return fail("index.json entry: sampling.mode: unknown mode");
    r.sampling = {*mode, sr.integer<uint64_t>("rate")};
    if (!sr.error().empty()) return fail("{}", sr.error());
  }
  if (auto f = j.find("finding"); f != j.end() && f->is_object()) {
    auto finding = report::read_finding_json(f->dump());
    if (!finding) return fail("index.json entry: {}", finding.error().message);
    r.finding = std::move(*finding);
  }
  return r;
}

}  // namespace

Result<std::vector<StoredReport>> parse_index(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return fail("not a JSON array");
  std::vector<StoredReport> out;
  for (const json& e : j) {
    if (!e.is_object()) continue;
    if (auto r = from_json(e)) out.push_back(std::move(*r));
  }
  return out;
}

ReportStore::ReportStore(std::string dir, ReportsConfig retention)
    : dir_(std::move(dir)), retention_(retention) {}

Result<std::unique_ptr<ReportStore>> ReportStore::open(const std::string& dir,
                                                       ReportsConfig retention) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail("cannot create reports_dir {}: {}", dir, ec.message());
  std::unique_ptr<ReportStore> store(new ReportStore(dir, retention));
  const std::string index = dir + "/index.json";
  if (fs::exists(index, ec)) {
    auto text = read_file(index);
    if (!text) return std::unexpected(text.error());
    // Without exceptions a syntax error or a number beyond a double's range (1e999) gives
    // a discarded value; the entries' fields are type-checked by EntryReader.
    json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_array()) return fail("{}: not a JSON array (move it away to start afresh)", index);
    for (size_t i = 0; i < j.size(); ++i) {
      const json& e = j[i];
      if (!e.is_object()) continue;
      auto r = from_json(e);
      if (!r)
        return fail("{}: entry {}: {} (move it away to start afresh)", index, i,
                    r.error().message);
      if (!r->id.empty() && fs::is_directory(dir + "/" + r->id, ec))
        store->entries_.push_back(std::move(*r));
    }
  }
  std::lock_guard lock(store->mu_);
  store->prune_locked(unix_ms_now());
  if (auto w = store->write_index_locked(); !w) return std::unexpected(w.error());
  return store;
}

Result<StoredReport> ReportStore::store(const InvestigationRequest& request,
                                        const InvestigationResult& result,
                                        int64_t started_unix_ms, int64_t finished_unix_ms) {
  InvestigationRecord record;
  record.request = request;
  record.memleak = result;
  record.end = to_string(result.end);
  record.started_unix_ms = started_unix_ms;
  record.finished_unix_ms = finished_unix_ms;
  return store(record);
}

Result<StoredReport> ReportStore::store(const InvestigationRecord& record) {
  const InvestigationRequest& request = record.request;
  const GrowthResult* growth =
      record.growth && record.growth->result ? &*record.growth->result : nullptr;
  if (!record.memleak && !growth)
    return fail("investigation of pid {}: nothing to store (no allocation report, no growth "
                "report)", request.pid);
  const int64_t started_unix_ms = record.started_unix_ms;
  const int64_t finished_unix_ms = record.finished_unix_ms;
  StoredReport e;
  e.started_unix_ms = started_unix_ms;
  e.finished_unix_ms = finished_unix_ms;
  e.target = request.target;
  e.pid = request.pid;
  e.comm = request.comm;
  e.reason = request.reason;
  e.end = record.end;
  e.memleak_error = record.memleak_error;
  e.sampling = request.sampling;
  e.workload = request.workload;
  if (record.growth) e.growth = summarize(*record.growth);
  e.finding = record.finding ? record.finding : finding_of(record);

  // Render everything before touching the disk: a writer failure leaves nothing behind.
  std::vector<std::pair<std::string, std::string>> files;
  if (record.memleak) {
    const InvestigationResult& result = *record.memleak;
    const report::Report& rep = result.report;
    e.duration_s = rep.duration_s;
    e.overhead_percent = result.overhead.overhead_percent;
    e.stacks = rep.stacks.size();
    for (auto& [name, n] : rep.lost) e.lost += n;
    if (!rep.stacks.empty()) {
      e.top_bytes = rep.stacks.front().bytes.estimate;
      e.top_function = culprit_name(rep.stacks.front().frames);
    }
    report::Report with_finding = rep;
    with_finding.finding = e.finding;
    files.emplace_back("report.json", report::write_json(with_finding));
    report::TextOptions text;
    text.time_hhmmss = local_hhmmss(finished_unix_ms);
    files.emplace_back("report.txt", finding_text(e.finding) + report::write_bcc_text(rep, text));
    if (auto pprof = report::write_pprof(rep)) {
      files.emplace_back("profile.pb.gz", std::move(*pprof));
    } else {
      log::warn("agent: pprof profile of pid {} not written: {}", request.pid,
                pprof.error().message);
    }
  }
  if (growth) {
    const report::GrowthReport& rep = growth->report;
    files.emplace_back("growth.json", report::write_growth_json(rep));
    report::GrowthTextOptions text;
    text.time_hhmmss = local_hhmmss(finished_unix_ms);
    files.emplace_back("growth.txt", report::write_growth_text(rep, text));
    if (auto pprof = report::render_growth(rep, report::Format::kPprof, text)) {
      files.emplace_back("growth.pb.gz", std::move(*pprof));
    } else {
      log::warn("agent: growth pprof profile of pid {} not written: {}", request.pid,
                pprof.error().message);
    }
  }
  json inv{{"request",
            {{"pid", request.pid},
             {"comm", request.comm},
             {"cgroup", request.cgroup},
             {"target", request.target},
             {"sampling", sampling_json(request.sampling)},
             {"duration_s", request.duration_s},
             {"overhead_budget_percent", request.overhead_budget_percent},
             {"reason", request.reason},
             {"workload", workload_to_json(request.workload)}}},
           {"end", e.end},
           {"finding", e.finding ? json::parse(report::write_finding_json(*e.finding))
                                 : json(nullptr)},
           {"memleak_error", e.memleak_error},
           {"started_unix_ms", started_unix_ms},
           {"finished_unix_ms", finished_unix_ms}};
  if (record.memleak) {
    const InvestigationOverhead& o = record.memleak->overhead;
    inv["overhead"] = {{"target_cpu_s", o.target_cpu_s},
                       {"probe_hits", o.probe_hits},
                       {"per_hit_cost_ns", o.per_hit_cost_ns},
                       {"estimated_cost_s", o.estimated_cost_s},
                       {"overhead_percent", o.overhead_percent},
                       {"trap_cost_s", o.trap_cost_s},
                       {"bpf_cost_s", o.bpf_cost_s},
                       {"hits_per_s", o.hits_per_s},
                       {"stop_reason", record.memleak->stop_reason}};
  }
  if (record.growth) {
    inv["growth"] = {{"requested_s", record.growth->requested_s},
                     {"outcome", record.growth->outcome},
                     {"error", record.growth->error},
                     {"duration_s", growth ? growth->report.duration_s : 0.0}};
  }
  if (record.memory) {
    const MemorySeries& m = *record.memory;
    inv["memory"] = {{"trigger_unix_ms", m.trigger_unix_ms},
                     {"t_unix_ms", m.t_unix_ms},
                     {"anon_bytes", m.anon_bytes},
                     {"rss_bytes", m.rss_bytes}};
  }
  files.emplace_back("investigation.json", inv.dump(2) + "\n");

  std::lock_guard lock(mu_);
  std::string base = utc_stamp(started_unix_ms) + "-" + sanitize(request.comm) + "-" +
                     std::to_string(request.pid);
  e.id = base;
  std::error_code ec;
  for (int n = 2; fs::exists(dir_ + "/" + e.id, ec); ++n) e.id = base + "-" + std::to_string(n);
  const std::string rdir = dir_ + "/" + e.id;
  fs::create_directories(rdir, ec);
  if (ec) return fail("cannot create {}: {}", rdir, ec.message());
  for (auto& [name, data] : files) {
    if (auto w = write_file_atomic(rdir + "/" + name, data); !w) {
      fs::remove_all(rdir, ec);
      return std::unexpected(w.error());
    }
    e.files.push_back(name);
  }
  entries_.push_back(e);
  if (auto w = write_index_locked(); !w) return std::unexpected(w.error());
  prune_locked(unix_ms_now());
  return e;
}

size_t ReportStore::prune(int64_t now_unix_ms) {
  std::lock_guard lock(mu_);
  return prune_locked(now_unix_ms);
}

size_t ReportStore::prune_locked(int64_t now_unix_ms) {
  std::stable_sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
    return a.started_unix_ms < b.started_unix_ms;
  });
  const int64_t oldest_ok = now_unix_ms - static_cast<int64_t>(retention_.max_age_s * 1000);
  size_t remove = 0;
  while (remove < entries_.size() &&
         (entries_.size() - remove > retention_.max_count ||
          entries_[remove].finished_unix_ms < oldest_ok))
    ++remove;
  if (remove == 0) return 0;
  std::vector<std::string> gone;
  for (size_t i = 0; i < remove; ++i) gone.push_back(entries_[i].id);
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(remove));
  pruned_total_ += remove;
  // The index stops naming a report before its files go.
  if (auto w = write_index_locked(); !w) log::warn("agent: {}", w.error().message);
  std::error_code ec;
  for (const std::string& id : gone) fs::remove_all(dir_ + "/" + id, ec);
  return remove;
}

Result<void> ReportStore::write_index_locked() {
  json j = json::array();
  for (const StoredReport& r : entries_) j.push_back(to_json(r));
  return write_file_atomic(dir_ + "/index.json", j.dump(2) + "\n");
}

std::vector<StoredReport> ReportStore::list() const {
  std::lock_guard lock(mu_);
  return entries_;
}

std::string ReportStore::index_json() const {
  std::lock_guard lock(mu_);
  json j = json::array();
  for (const StoredReport& r : entries_) j.push_back(to_json(r));
  return j.dump(2) + "\n";
}

uint64_t ReportStore::pruned_total() const {
  std::lock_guard lock(mu_);
  return pruned_total_;
}

void ReportStore::set_retention(ReportsConfig retention) {
  std::lock_guard lock(mu_);
  retention_ = retention;
}

}  // namespace leakwatch::agent
