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

// Reads the fields of an index entry.  A field of another type than the one this file
// writes marks the entry bad (nlohmann's value() would throw, or convert a float to an
// integer out of range), so that a damaged index.json is skipped entry by entry.
class FieldReader {
 public:
  explicit FieldReader(const json& j) : j_(j) {}
  bool ok() const { return ok_; }

  std::string text(const char* key) {
    const json* v = find(key);
    if (v == nullptr) return "";
    if (!v->is_string()) return bad("");
    return v->get<std::string>();
  }
  double number(const char* key) {
    const json* v = find(key);
    if (v == nullptr) return 0;
    if (!v->is_number()) return bad(0.0);
    return v->get<double>();
  }
  int64_t integer(const char* key) {
    const json* v = find(key);
    if (v == nullptr) return 0;
    if (!v->is_number_integer()) return bad(int64_t{0});
    return v->get<int64_t>();
  }
  uint64_t count(const char* key) {
    const json* v = find(key);
    if (v == nullptr) return 0;
    if (!v->is_number_unsigned()) return bad(uint64_t{0});
    return v->get<uint64_t>();
  }
  std::vector<std::string> texts(const char* key) {
    const json* v = find(key);
    std::vector<std::string> out;
    if (v == nullptr) return out;
    if (!v->is_array()) return bad(out);
    for (const json& e : *v) {
      if (!e.is_string()) return bad(std::vector<std::string>{});
      out.push_back(e.get<std::string>());
    }
    return out;
  }

 private:
  const json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  template <typename T>
  T bad(T fallback) {
    ok_ = false;
    return fallback;
  }
  const json& j_;
  bool ok_ = true;
};

std::optional<StoredGrowth> growth_from_json(const json& j) {
  FieldReader f(j);
  StoredGrowth g;
  g.outcome = f.text("outcome");
  g.error = f.text("error");
  g.duration_s = f.number("duration_s");
  g.stacks = f.count("stacks");
  g.top_function = f.text("top_function");
  g.top_bytes = f.number("top_bytes");
  g.faulted_bytes = f.number("faulted_bytes");
  g.mapped_bytes = f.number("mapped_bytes");
  g.lost = f.count("lost");
  if (!f.ok()) return std::nullopt;
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
              {"files", r.files}};
}

// An id names a subdirectory of reports_dir, which pruning removes: it must be one plain
// path component (an index.json saying "../x" must not make the agent delete outside it).
bool plain_component(const std::string& id) {
  return !id.empty() && id != "." && id != ".." && id.find('/') == std::string::npos &&
         id.find('\0') == std::string::npos;
}

// Nullopt for an entry that is not one this file writes.
std::optional<StoredReport> from_json(const json& j) {
  FieldReader f(j);
  StoredReport r;
  r.id = f.text("id");
  r.started_unix_ms = f.integer("started_unix_ms");
  r.finished_unix_ms = f.integer("finished_unix_ms");
  r.target = f.text("target");
  r.pid = static_cast<int>(std::clamp<int64_t>(f.integer("pid"), INT32_MIN, INT32_MAX));
  r.comm = f.text("comm");
  r.reason = f.text("reason");
  r.end = f.text("end");
  r.memleak_error = f.text("memleak_error");
  r.duration_s = f.number("duration_s");
  r.sample_rate = f.count("sample_rate");
  r.overhead_percent = f.number("overhead_percent");
  r.stacks = f.count("stacks");
  r.top_function = f.text("top_function");
  r.top_bytes = f.number("top_bytes");
  r.lost = f.count("lost");
  if (auto g = j.find("growth"); g != j.end() && !g->is_null()) {
    if (!g->is_object()) return std::nullopt;
    r.growth = growth_from_json(*g);
    if (!r.growth) return std::nullopt;
  }
  r.files = f.texts("files");
  for (const std::string& file : r.files)
    if (!plain_component(file)) return std::nullopt;
  if (!f.ok() || !plain_component(r.id)) return std::nullopt;
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
    auto entries = parse_index(*text);
    if (!entries) return fail("{}: {} (move it away to start afresh)", index, entries.error().message);
    for (StoredReport& r : *entries) {
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
             {"reason", request.reason}}},
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
