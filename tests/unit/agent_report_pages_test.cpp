// The agent's stored investigations over HTTP, on a real server (cpp-httplib on loopback):
// every stored file with its content type, read-only (GET/HEAD only), nothing outside
// reports_dir or not listed in the index (traversal in every spelling, symbolic links,
// unknown ids), and the HTML pages with hostile names escaped.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/http_server.h"
#include "agent/report_pages.h"
#include "agent/report_store.h"
#include "common/atomic_file.h"
#include "common/clock.h"

namespace leakwatch::agent {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kHostile = "<script>alert(\"x\")</script>'&";

InvestigationRecord record(const std::string& comm) {
  InvestigationRecord rec;
  rec.request.pid = 4242;
  rec.request.comm = comm;
  rec.request.target = "comm:" + comm;
  rec.request.reason = "memory_growth_rate " + kHostile;
  InvestigationResult r;
  r.report.target = {4242, comm, "", false};
  r.report.duration_s = 10;
  r.report.final = true;
  report::StackReport s;
  s.stack_id = 7;
  report::Frame f;
  f.function = kHostile + "leak_fn(int)";
  f.module = "app";
  s.frames = {f};
  s.bytes = {4096, 4096, 4096, 4096};
  s.count = {1, 1, 1, 1};
  s.verdict = report::Verdict::kLeak;
  r.report.stacks = {s};
  rec.memleak = r;
  rec.end = "duration";
  GrowthStep g;
  g.requested_s = 2;
  g.outcome = "duration";
  GrowthResult gr;
  gr.report.target = {4242, comm, "", false};
  gr.report.final = true;
  g.result = gr;
  rec.growth = g;
  const int64_t now = unix_ms_now();
  rec.started_unix_ms = now - 12000;
  rec.finished_unix_ms = now;
  rec.memory = MemorySeries{now - 11000, {now - 20000, now - 10000, now}, {1e6, 2e6, 3e6}, {4e6, 5e6, 6e6}};
  return rec;
}

class ReportPages : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "lw-pages-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    reports_ = dir_ + "/reports";
    {
      auto store = ReportStore::open(reports_, ReportsConfig{});
      ASSERT_TRUE(store) << store.error().message;
      auto a = (*store)->store(record(kHostile));
      ASSERT_TRUE(a) << a.error().message;
      entry_ = *a;
      auto b = (*store)->store(record("second"));
      ASSERT_TRUE(b) << b.error().message;
      second_ = *b;
    }
    // Outside reports_dir, and an unlisted file inside a report's directory.
    ASSERT_TRUE(write_file_atomic(dir_ + "/secret.txt", "outside\n"));
    ASSERT_TRUE(write_file_atomic(reports_ + "/" + entry_.id + "/unlisted.json", "{}\n"));

    AgentConfig c;
    c.reports_dir = reports_;
    c.targets.push_back({TargetSpec::Kind::kPid, "", ::getpid(), "", 1});
    auto agent = Agent::create(c, AgentOptions{});
    ASSERT_TRUE(agent) << agent.error().message;
    agent_ = std::move(*agent);
    auto server = HttpServer::start({"127.0.0.1", 0}, *agent_);
    ASSERT_TRUE(server) << server.error().message;
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    agent_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  httplib::Result get(const std::string& path) { return client_->Get(path.c_str()); }
  std::string file(const std::string& id, const std::string& name) {
    return read_file(reports_ + "/" + id + "/" + name).value_or("<unreadable>");
  }

  std::string dir_, reports_;
  StoredReport entry_, second_;
  std::unique_ptr<Agent> agent_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ReportPages, EveryStoredFileWithItsContentType) {
  ASSERT_EQ(entry_.files.size(), 7u);
  for (const std::string& name : entry_.files) {
    auto r = get("/api/reports/" + entry_.id + "/" + name);
    ASSERT_TRUE(r) << name;
    EXPECT_EQ(r->status, 200) << name;
    EXPECT_EQ(r->body, file(entry_.id, name)) << name;
    EXPECT_EQ(r->get_header_value("Content-Type"), stored_file_type(name)) << name;
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << name;
  }
  EXPECT_EQ(stored_file_type("report.json"), "application/json");
  EXPECT_EQ(stored_file_type("report.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(stored_file_type("profile.pb.gz"), "application/gzip");
  // /api/reports/<id> is the investigation itself.
  auto inv = get("/api/reports/" + entry_.id);
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->status, 200);
  EXPECT_EQ(inv->body, file(entry_.id, "investigation.json"));
  json j = json::parse(inv->body);
  EXPECT_EQ(j["request"]["comm"], kHostile);
  EXPECT_EQ(j["memory"]["anon_bytes"].size(), 3u);
  // The index is still served as it was.
  auto index = get("/api/reports");
  ASSERT_TRUE(index);
  EXPECT_EQ(json::parse(index->body).size(), 2u);
}

TEST_F(ReportPages, OnlyGetAndHead) {
  const std::string path = "/api/reports/" + entry_.id + "/report.json";
  auto head = client_->Head(path.c_str());
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  auto refused = [](const httplib::Result& r, const char* method) {
    ASSERT_TRUE(r) << method;
    EXPECT_NE(r->status, 200) << method;
    EXPECT_EQ(r->body.find("\"stacks\""), std::string::npos) << method;
  };
  refused(client_->Post(path.c_str(), "x", "text/plain"), "POST");
  refused(client_->Put(path.c_str(), "x", "text/plain"), "PUT");
  refused(client_->Delete(path.c_str()), "DELETE");
  refused(client_->Patch(path.c_str(), "x", "text/plain"), "PATCH");
  refused(client_->Options(path.c_str()), "OPTIONS");
  EXPECT_EQ(file(entry_.id, "report.json").substr(0, 1), "{");  // untouched
}

TEST_F(ReportPages, NothingOutsideTheStoreOrUnlisted) {
  const std::string id = entry_.id;
  for (const std::string& path : std::vector<std::string>{
           "/api/reports/unknown-id",
           "/api/reports/unknown-id/report.json",
           "/reports/unknown-id",
           "/api/reports/index.json",
           "/api/reports/" + id + "/unlisted.json",
           "/api/reports/" + id + "/index.json",
           "/api/reports/..",
           "/api/reports/../secret.txt",
           "/api/reports/%2e%2e/secret.txt",
           "/api/reports/%2E%2E/secret.txt",
           "/api/reports/" + id + "/..",
           "/api/reports/" + id + "/%2e%2e",
           "/api/reports/" + id + "/..%2f..%2fsecret.txt",
           "/api/reports/" + id + "/%2e%2e%2f%2e%2e%2fsecret.txt",
           "/api/reports/" + id + "/..%2f" + id + "%2freport.json",
           "/api/reports/%2e%2e%2freports%2f" + id + "/report.json",
           "/api/reports/" + id + "/%2fetc%2fpasswd",
           "/api/reports//etc/passwd",
           "/api/reports/%2fetc%2fpasswd",
           "/api/reports/" + dir_ + "/secret.txt",
           "/api/reports/" + id + "/" + dir_ + "/secret.txt",
           "/api/reports/" + id + "/report.json%00.txt",
           "/reports/..",
           "/reports/%2e%2e",
           "/secret.txt",
       }) {
    auto r = get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->body.find("outside"), std::string::npos) << path;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << path;
  }
}

TEST_F(ReportPages, SymbolicLinksAreNotFollowed) {
  // A listed file replaced by a link to a file outside reports_dir.
  const std::string txt = reports_ + "/" + entry_.id + "/report.txt";
  fs::remove(txt);
  fs::create_symlink(dir_ + "/secret.txt", txt);
  auto r = get("/api/reports/" + entry_.id + "/report.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body.find("outside"), std::string::npos);
  // A report's directory replaced by a link to another directory.
  const std::string second = reports_ + "/" + second_.id;
  const std::string elsewhere = dir_ + "/elsewhere";
  fs::rename(second, elsewhere);
  fs::create_symlink(elsewhere, second);
  for (const std::string& path : {"/api/reports/" + second_.id, "/api/reports/" + second_.id + "/report.json",
                                  "/reports/" + second_.id}) {
    auto s = get(path);
    ASSERT_TRUE(s) << path;
    EXPECT_EQ(s->status, 404) << path;
  }
  // The other files of the first report are still served.
  auto ok = get("/api/reports/" + entry_.id + "/report.json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ReportPages, PagesEscapeEveryName) {
  auto list = get("/");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 200);
  EXPECT_EQ(list->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(list->get_header_value("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(list->body.find("<script"), std::string::npos);  // the list needs no script at all
  EXPECT_EQ(list->body.find("alert(\"x\")"), std::string::npos);
  EXPECT_NE(list->body.find("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;"), std::string::npos);
  EXPECT_NE(list->body.find("href=\"reports/" + entry_.id + "\""), std::string::npos);
  EXPECT_NE(list->body.find("<svg class=\"spark\""), std::string::npos);  // the memory sparkline

  auto page = get("/reports/" + entry_.id);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(page->body.find("alert(\"x\")"), std::string::npos);
  size_t scripts = 0;
  for (size_t p = page->body.find("<script"); p != std::string::npos; p = page->body.find("<script", p + 1)) ++scripts;
  EXPECT_EQ(scripts, 2u);
  EXPECT_NE(page->body.find("\"kind\":\"investigation\""), std::string::npos);
}

}  // namespace
}  // namespace leakwatch::agent
