#include "agent/report_pages.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "common/fd.h"
#include "report/html.h"
#include "report/html_writer.h"

namespace leakwatch::agent {
namespace {

using Json = nlohmann::ordered_json;
using report::escape_html;

// Stored files are at most a few MiB; anything far larger is not one of ours.
constexpr off_t kMaxFileBytes = 64 << 20;

std::optional<StoredReport> find_entry(const ReportStore& store, std::string_view id) {
  for (StoredReport& r : store.list())
    if (r.id == id) return std::move(r);
  return std::nullopt;
}

bool plain_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

// Reads reports_dir/<id>/<file> without following a symbolic link at either level, and
// only a regular file.
std::optional<std::string> read_beneath(const std::string& dir, std::string_view id,
                                        std::string_view file) {
  if (!plain_name(id) || !plain_name(file)) return std::nullopt;
  UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return std::nullopt;
  UniqueFd sub(::openat(root.get(), std::string(id).c_str(),
                        O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st{};
  if (!sub.valid() || ::fstat(sub.get(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  UniqueFd fd(::openat(sub.get(), std::string(file).c_str(),
                       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxFileBytes)
    return std::nullopt;
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

// A stored file named in the entry, read; nullopt when not listed or not readable.
std::optional<std::string> stored(const ReportStore& store, const StoredReport& entry,
                                  std::string_view file) {
  if (std::find(entry.files.begin(), entry.files.end(), file) == entry.files.end())
    return std::nullopt;
  return read_beneath(store.dir(), entry.id, file);
}

Json stored_json(const ReportStore& store, const StoredReport& entry, std::string_view file) {
  auto text = stored(store, entry, file);
  if (!text) return nullptr;
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? Json(nullptr) : j;
}

void page_headers(HttpReply& r) {
  r.headers.emplace_back("Content-Security-Policy",
                         report::content_security_policy() + "; frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
  r.headers.emplace_back("Cache-Control", "no-store");
}

HttpReply html(std::string body) {
  HttpReply r;
  r.status = 200;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  page_headers(r);
  return r;
}

std::string utc(int64_t unix_ms) {
  time_t secs = static_cast<time_t>(unix_ms / 1000);
  tm t{};
  ::gmtime_r(&secs, &t);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
}

std::string size_text(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  while (std::fabs(bytes) >= 1024 && i < 4) {
    bytes /= 1024;
    ++i;
  }
  return i == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[i]);
}

// An inline SVG polyline of the anonymous memory around the trigger (numbers only: nothing
// from the traced program), the trigger as a dashed line.
std::string sparkline(const Json& memory) {
  constexpr double kW = 160, kH = 28;
  if (!memory.is_object()) return "<span class=\"muted\">–</span>";
  const Json t = memory.value("t_unix_ms", Json::array());
  const Json v = memory.value("anon_bytes", Json::array());
  if (!t.is_array() || !v.is_array() || t.size() < 2 || t.size() != v.size())
    return "<span class=\"muted\">–</span>";
  double t0 = t.front().get<double>(), t1 = t.back().get<double>();
  double lo = INFINITY, hi = -INFINITY;
  for (const Json& x : v)
    if (x.is_number()) lo = std::min(lo, x.get<double>()), hi = std::max(hi, x.get<double>());
  if (!(t1 > t0) || !std::isfinite(lo)) return "<span class=\"muted\">–</span>";
  if (hi <= lo) hi = lo + 1;
  std::string points;
  for (size_t i = 0; i < t.size(); ++i) {
    if (!v[i].is_number() || !t[i].is_number()) continue;
    double x = (t[i].get<double>() - t0) / (t1 - t0) * kW;
    double y = kH - 2 - (v[i].get<double>() - lo) / (hi - lo) * (kH - 4);
    points += fmt::format("{:.1f},{:.1f} ", x, y);
  }
  std::string trigger;
  if (auto tr = memory.find("trigger_unix_ms"); tr != memory.end() && tr->is_number()) {
    double x = (tr->get<double>() - t0) / (t1 - t0) * kW;
    if (x >= 0 && x <= kW) trigger = fmt::format("<line x1=\"{0:.1f}\" y1=\"0\" x2=\"{0:.1f}\" y2=\"{1}\"/>", x, kH);
  }
  return fmt::format("<svg class=\"spark\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
                     "role=\"img\" aria-label=\"anonymous memory {2} to {3}\">{4}<polyline "
                     "points=\"{5}\"/></svg>",
                     kW, kH, size_text(lo), size_text(hi), trigger, points);
}

// A path segment: unreserved characters as they are, every other byte %XX.
std::string url_segment(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

}  // namespace

std::string stored_file_type(std::string_view file) {
  if (file.ends_with(".json")) return "application/json";
  if (file.ends_with(".txt")) return "text/plain; charset=utf-8";
  if (file.ends_with(".pb.gz")) return "application/gzip";
  return "";
}

HttpReply report_file(const ReportStore& store, std::string_view id, std::string_view file) {
  HttpReply r;
  auto entry = find_entry(store, id);
  if (!entry) return r;
  const std::string type = stored_file_type(file);
  if (type.empty()) return r;
  auto data = stored(store, *entry, file);
  if (!data) return r;
  r.status = 200;
  r.content_type = type;
  r.body = std::move(*data);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
  if (file.ends_with(".pb.gz"))
    r.headers.emplace_back("Content-Disposition",
                           fmt::format("attachment; filename=\"{}-{}\"", entry->id, file));
  return r;
}

HttpReply report_page(const ReportStore& store, std::string_view id) {
  HttpReply r;
  auto entry = find_entry(store, id);
  if (!entry) return r;
  Json inv = stored_json(store, *entry, "investigation.json");
  if (!inv.is_object()) return r;
  return html(report::write_investigation_html(inv, stored_json(store, *entry, "report.json"),
                                               stored_json(store, *entry, "growth.json")));
}

HttpReply reports_index_page(const ReportStore& store) {
  std::vector<StoredReport> entries = store.list();
  std::reverse(entries.begin(), entries.end());  // newest first
  std::string body;
  body += "<section class=\"card\"><h2>Stored investigations</h2>";
  body += fmt::format("<p class=\"hint\">{} stored in {}. Each row links to its page; "
                      "<a href=\"api/reports\">api/reports</a> lists them as JSON, "
                      "<a href=\"metrics\">metrics</a> has the agent's Prometheus metrics.</p>",
                      entries.size(), escape_html(store.dir()));
  if (entries.empty()) {
    body += "<p class=\"empty\">No investigation stored yet.</p></section>";
    return html(report::html_document("leakwatch agent: investigations", body, nullptr));
  }
  body += "<div class=\"table-wrap\"><table class=\"reports\"><thead><tr><th>started</th>"
          "<th>target</th><th>process</th><th>trigger</th><th>finding</th><th>duration</th>"
          "<th>memory around the trigger</th></tr></thead><tbody>";
  for (const StoredReport& e : entries) {
    Json inv = stored_json(store, e, "investigation.json");
    Json finding = inv.is_object() ? inv.value("finding", Json(nullptr)) : Json(nullptr);
    std::string finding_html;
    if (finding.is_object() && !finding.value("function", "").empty()) {
      finding_html = fmt::format("<span class=\"badge v-{0}\">{0}</span> <span class=\"fname\">{1}</span>",
                                 escape_html(finding.value("verdict", "unknown")),
                                 escape_html(finding.value("function", "")));
    } else {
      std::string top = !e.top_function.empty() ? e.top_function
                        : e.growth                ? e.growth->top_function
                                                  : "";
      finding_html = "<span class=\"muted\">no finding</span>";
      if (!top.empty())
        finding_html += fmt::format("<br><span class=\"muted\">largest stack: {}</span>", escape_html(top));
    }
    const std::string link = "reports/" + escape_html(url_segment(e.id));
    body += fmt::format(
        "<tr><td><a href=\"{0}\">{1}</a></td><td>{2}</td><td>{3} (pid {4})</td>"
        "<td title=\"{5}\">{5}</td><td class=\"fn\">{6}</td><td>{7:.1f} s</td><td>{8}</td></tr>",
        link, escape_html(utc(e.started_unix_ms)), escape_html(e.target), escape_html(e.comm),
        e.pid, escape_html(e.reason), finding_html,
        static_cast<double>(e.finished_unix_ms - e.started_unix_ms) / 1000.0,
        sparkline(inv.is_object() ? inv.value("memory", Json(nullptr)) : Json(nullptr)));
  }
  body += "</tbody></table></div></section>";
  return html(report::html_document("leakwatch agent: investigations", body, nullptr));
}

void register_report_pages(httplib::Server& server, const Agent& agent) {
  auto reply = [](httplib::Response& res, const HttpReply& r) {
    res.status = r.status;
    for (const auto& [k, v] : r.headers) res.set_header(k, v);
    res.set_content(r.body, r.content_type);
  };
  server.Get("/", [&agent, reply](const httplib::Request&, httplib::Response& res) {
    reply(res, reports_index_page(*agent.report_store()));
  });
  server.Get(R"(/reports/([^/]+))", [&agent, reply](const httplib::Request& req, httplib::Response& res) {
    reply(res, report_page(*agent.report_store(), req.matches[1].str()));
  });
  server.Get(R"(/api/reports/([^/]+))", [&agent, reply](const httplib::Request& req, httplib::Response& res) {
    reply(res, report_file(*agent.report_store(), req.matches[1].str(), "investigation.json"));
  });
  server.Get(R"(/api/reports/([^/]+)/([^/]+))",
             [&agent, reply](const httplib::Request& req, httplib::Response& res) {
               reply(res, report_file(*agent.report_store(), req.matches[1].str(),
                                      req.matches[2].str()));
             });
}

}  // namespace leakwatch::agent
