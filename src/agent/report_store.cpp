#include "agent/report_store.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/clock.h"
#include "common/log.h"
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

// Allocator entry points are where every stack starts; the summary names the first frame
// above them: the function that asked for the memory.
bool is_allocator_frame(const report::Frame& f) {
  static const std::array<std::string_view, 14> kAllocators{
      "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc",
      "memalign", "valloc", "pvalloc", "operator new", "operator new[]", "strdup", "strndup"};
  if (f.function.empty()) return false;
  std::string_view fn = f.function;
  if (size_t paren = fn.find('('); paren != std::string_view::npos) fn = fn.substr(0, paren);
  return std::find(kAllocators.begin(), kAllocators.end(), fn) != kAllocators.end() ||
         fn.starts_with("__libc_") || fn.starts_with("_int_");
}

// The growth report's stacks start where the kernel saw the growth: a fault in memset or in
// the allocator, or the mmap/brk wrapper of a syscall.  The summary names the first frame
// above those.
bool is_growth_plumbing_frame(const report::Frame& f) {
  static const std::array<std::string_view, 8> kWrappers{
      "mmap", "mmap64", "munmap", "mremap", "brk", "sbrk", "sysmalloc", "systrim"};
  static const std::array<std::string_view, 6> kPrefixes{
      "__mmap", "__munmap", "__mremap", "__brk", "__sbrk", "__mem"};
  if (is_allocator_frame(f)) return true;
  std::string_view fn = f.function;
  if (size_t paren = fn.find('('); paren != std::string_view::npos) fn = fn.substr(0, paren);
  if (fn.starts_with("memset") || fn.starts_with("memcpy") || fn.starts_with("memmove"))
    return true;
  for (std::string_view p : kPrefixes)
    if (fn.starts_with(p)) return true;
  return std::find(kWrappers.begin(), kWrappers.end(), fn) != kWrappers.end();
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

StoredGrowth growth_from_json(const json& j) {
  StoredGrowth g;
  g.outcome = j.value("outcome", "");
  g.error = j.value("error", "");
  g.duration_s = j.value("duration_s", 0.0);
  g.stacks = j.value("stacks", size_t{0});
  g.top_function = j.value("top_function", "");
  g.top_bytes = j.value("top_bytes", 0.0);
  g.faulted_bytes = j.value("faulted_bytes", 0.0);
  g.mapped_bytes = j.value("mapped_bytes", 0.0);
  g.lost = j.value("lost", uint64_t{0});
  return g;
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
    for (const report::Frame& f : rep.stacks.front().frames)
      if (!f.function.empty() && !is_growth_plumbing_frame(f)) {
        g.top_function = f.function;
        break;
      }
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
              {"sample_rate", r.sample_rate},
              {"overhead_percent", r.overhead_percent},
              {"stacks", r.stacks},
              {"top_function", r.top_function},
              {"top_bytes", r.top_bytes},
              {"lost", r.lost},
              {"growth", r.growth ? growth_to_json(*r.growth) : json(nullptr)},
              {"workload", workload_to_json(r.workload)},
              {"files", r.files}};
}

StoredReport from_json(const json& j) {
  StoredReport r;
  r.id = j.value("id", "");
  r.started_unix_ms = j.value("started_unix_ms", int64_t{0});
  r.finished_unix_ms = j.value("finished_unix_ms", int64_t{0});
  r.target = j.value("target", "");
  r.pid = j.value("pid", 0);
  r.comm = j.value("comm", "");
  r.reason = j.value("reason", "");
  r.end = j.value("end", "");
  r.memleak_error = j.value("memleak_error", "");
  r.duration_s = j.value("duration_s", 0.0);
  r.sample_rate = j.value("sample_rate", uint64_t{0});
  r.overhead_percent = j.value("overhead_percent", 0.0);
  r.stacks = j.value("stacks", size_t{0});
  r.top_function = j.value("top_function", "");
  r.top_bytes = j.value("top_bytes", 0.0);
  r.lost = j.value("lost", uint64_t{0});
  if (auto g = j.find("growth"); g != j.end() && g->is_object()) r.growth = growth_from_json(*g);
  if (auto w = j.find("workload"); w != j.end()) r.workload = workload_from_json(*w);
  r.files = j.value("files", std::vector<std::string>{});
  return r;
}

}  // namespace

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
    json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_array()) return fail("{}: not a JSON array (move it away to start afresh)", index);
    for (const json& e : j) {
      if (!e.is_object()) continue;
      StoredReport r = from_json(e);
      if (!r.id.empty() && fs::is_directory(dir + "/" + r.id, ec))
        store->entries_.push_back(std::move(r));
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
  e.sample_rate = request.sample_rate;
  e.workload = request.workload;
  if (record.growth) e.growth = summarize(*record.growth);

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
      for (const report::Frame& f : rep.stacks.front().frames)
        if (!f.function.empty() && !is_allocator_frame(f)) {
          e.top_function = f.function;
          break;
        }
    }
    files.emplace_back("report.json", report::write_json(rep));
    report::TextOptions text;
    text.time_hhmmss = local_hhmmss(finished_unix_ms);
    files.emplace_back("report.txt", report::write_bcc_text(rep, text));
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
             {"sample_rate", request.sample_rate},
             {"duration_s", request.duration_s},
             {"overhead_budget_percent", request.overhead_budget_percent},
             {"reason", request.reason},
             {"workload", workload_to_json(request.workload)}}},
           {"end", e.end},
           {"memleak_error", e.memleak_error},
           {"started_unix_ms", started_unix_ms},
           {"finished_unix_ms", finished_unix_ms}};
  if (record.memleak) {
    const InvestigationOverhead& o = record.memleak->overhead;
    inv["overhead"] = {{"target_cpu_s", o.target_cpu_s},
                       {"probe_hits", o.probe_hits},
                       {"per_hit_cost_ns", o.per_hit_cost_ns},
                       {"estimated_cost_s", o.estimated_cost_s},
                       {"overhead_percent", o.overhead_percent}};
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
