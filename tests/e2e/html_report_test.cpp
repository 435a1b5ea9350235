// The HTML report in a real browser: Debian's headless Chromium, driven by playwright-core
// (tests/browser/check_page.mjs).  Pages of reports traced for real by leakwatch (memleak,
// growth), of a diff, of a report full of hostile names, and of a running agent's stored
// investigation: no console error, no request leaving the page, the leaking function in the
// flame graph, a click that zooms, a timeline with points.  Screenshots are kept in
// <build>/tests/html-screenshots.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/agent_run.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kNodeModules = std::string(LEAKWATCH_BUILD_DIR) + "/web/node_modules";
const std::string kShots = std::string(LEAKWATCH_BUILD_DIR) + "/tests/html-screenshots";
constexpr const char* kChromium = "/usr/bin/chromium";

// What check_page.mjs saw; `name` names the screenshots.
json browse(const std::string& url, const std::string& name, const std::string& click = "",
            const std::string& wait_for = "") {
  fs::create_directories(kShots);
  std::vector<std::string> argv{"node", std::string(LEAKWATCH_SOURCE_DIR) + "/tests/browser/check_page.mjs",
                                kNodeModules, url, kShots, name};
  if (!click.empty()) argv.insert(argv.end(), {"--click", click});
  if (!wait_for.empty()) argv.insert(argv.end(), {"--selector-wait", wait_for});
  RunResult r = run_argv(argv, std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(out.is_object()) << r.out << r.err;
  if (!out.is_object()) return json::object();
  EXPECT_FALSE(out.contains("error")) << out.value("error", "");
  return out;
}

// A page that drew without errors and fetched nothing.
void expect_clean(const json& page, const std::string& url) {
  EXPECT_EQ(page["console"], json::array()) << page["console"].dump(2);
  EXPECT_EQ(page["pageErrors"], json::array()) << page["pageErrors"].dump(2);
  EXPECT_EQ(page["dialogs"], json::array()) << page["dialogs"].dump(2);
  EXPECT_EQ(page["blocked"], json::array()) << "requests left the page: " << page["blocked"].dump(2);
  for (const json& u : page["requests"]) EXPECT_EQ(u.get<std::string>().rfind(url, 0), 0u) << u;
}

std::vector<std::string> frame_names(const json& page, const std::string& chart = "") {
  std::vector<std::string> out;
  for (const json& f : page["info"]["frames"])
    if (chart.empty() || f["chart"] == chart) out.push_back(f["name"]);
  return out;
}

bool has_frame(const json& page, const std::string& prefix) {
  for (const std::string& n : frame_names(page))
    if (n.rfind(prefix, 0) == 0) return true;
  return false;
}

std::string first_frame(const json& page, const std::string& prefix) {
  for (const std::string& n : frame_names(page))
    if (n.rfind(prefix, 0) == 0) return n;
  return "";
}

class HtmlReport : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kChromium, X_OK) != 0)
      FAIL() << kChromium << " is missing: `make deps` installs Debian's chromium";
    if (!fs::exists(kNodeModules + "/playwright-core"))
      FAIL() << "playwright-core is missing from " << kNodeModules << " (the build's npm ci)";
  }
};

// The zoom: the clicked frame spans the chart afterwards, its siblings fade.
void expect_zoom(const json& page, const std::string& name) {
  ASSERT_TRUE(page.contains("zoom")) << page.dump(1).substr(0, 2000);
  const json& z = page["zoom"];
  ASSERT_TRUE(z["found"].get<bool>()) << name;
  const double svg = page["info"]["svgWidth"].get<double>();
  EXPECT_LT(z["before"].get<double>(), 0.95 * svg) << z.dump();
  EXPECT_NEAR(z["after"].get<double>(), svg, 2.0) << z.dump();
  EXPECT_GT(z["faded"].get<int>(), 0) << z.dump();
}

TEST_F(HtmlReport, MemleakTracedForRealShowsTheLeak) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  // ml_verdicts for 5 s, a report a second: leak_requests leaks, fill_cache and make_pool
  // are caches, lru_insert churns.
  const std::string out = temp_path("memleak.html");
  RunResult r = run_argv({leakwatch(), "memleak", "-c", fixture("ml_verdicts") + " 5", "-o", "0",
                          "--format", "html", "--output", out},
                         std::chrono::seconds(90));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto html = read_file(out);
  ASSERT_TRUE(html);
  EXPECT_LT(html->size(), 1024u * 1024) << "a typical report is under 1 MB";
  const std::string url = "file://" + out;
  json page = browse(url, "memleak");
  expect_clean(page, url);
  EXPECT_EQ(page["info"]["scripts"], 2);
  EXPECT_TRUE(has_frame(page, "leak_requests")) << json(frame_names(page)).dump(1);
  // The timeline: a point a second (--format html's default interval) for ~5 s.
  ASSERT_FALSE(page["info"]["charts"].empty());
  EXPECT_GE(page["info"]["charts"][0]["points"].get<int>(), 3) << page["info"]["charts"].dump();
  EXPECT_GE(page["info"]["tableRows"].get<int>(), 3);
  // Click the leaking function's frame: it fills the chart.
  json zoomed = browse(url, "memleak", first_frame(page, "leak_requests"));
  expect_clean(zoomed, url);
  expect_zoom(zoomed, "leak_requests");
  EXPECT_NE(page["info"]["text"].get<std::string>().find("leak_requests"), std::string::npos);
}

TEST_F(HtmlReport, GrowthTracedForReal) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  const std::string out = temp_path("growth.html");
  RunResult r = run_argv({leakwatch(), "growth", "-c", fixture("gr_growth"), "--format", "html",
                          "--output", out}, std::chrono::seconds(90));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string url = "file://" + out;
  json page = browse(url, "growth", "grow_heap_pages");
  expect_clean(page, url);
  EXPECT_TRUE(has_frame(page, "grow_heap_pages")) << json(frame_names(page)).dump(1);
  expect_zoom(page, "grow_heap_pages");
}

report::Report hostile_report(const std::string& evil) {
  report::Report r;
  r.target = {666, evil, evil, false};
  r.duration_s = 3;
  r.timestamp_unix_ms = 1764000000000;
  r.final = true;
  for (int i = 0; i < 3; ++i) {
    report::StackReport s;
    s.stack_id = static_cast<uint64_t>(i + 1);
    report::Frame f;
    f.function = evil + std::to_string(i);
    f.module = evil;
    f.file = evil;
    f.line = 1;
    report::Frame main_frame;
    main_frame.function = "main";
    s.frames = {f, main_frame};
    s.bytes = {4096.0 * (i + 1), 4096.0 * (i + 1), 4096.0 * (i + 1), 4096.0 * (i + 1)};
    s.count = {1, 1, 1, 1};
    s.verdict = report::Verdict::kLeak;
    s.reason = evil;
    r.stacks.push_back(s);
  }
  r.notes = {evil};
  r.lost = {{evil, 1}};
  r.finding = report::Finding{evil + "0", evil, evil, 2, 4096, 10, report::Verdict::kLeak, 0.9,
                              evil, {evil}, evil, "low"};
  r.timeline = report::Timeline{{1, 2, 3}, {100, 200, 300}, {1000, 2000, 3000}, {{1, {50, 100, 150}}}};
  return r;
}

TEST_F(HtmlReport, HostileNamesAreTextEverywhere) {
  // Markup, script, attribute and comment breakers in every name the page shows.
  const std::string evil = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'<!--&amp;\xE2\x80\xA8";
  const std::string in = temp_path("hostile.json");
  ASSERT_TRUE(write_file_atomic(in, report::write_json(hostile_report(evil))));
  const std::string out = temp_path("hostile.html");
  RunResult r = run_argv({leakwatch(), "report", in, "--format", "html", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string url = "file://" + out;
  json page = browse(url, "hostile", evil + "2");
  expect_clean(page, url);
  EXPECT_EQ(page["info"]["scripts"], 2) << "a name became a script element";
  // The title as text (the browser folds U+2028 into a space, as it does any whitespace).
  const std::string title = page["title"];
  const std::string shown_evil = evil.substr(0, evil.size() - 3);
  EXPECT_EQ(title.rfind("Memory leaks of " + shown_evil, 0), 0u) << title;
  EXPECT_NE(title.find("(pid 666), cgroup " + shown_evil), std::string::npos) << title;
  const std::string text = page["info"]["text"];
  // Shown as text: in the finding, the summary, the table, the notes and losses.
  EXPECT_NE(page["info"]["finding"].get<std::string>().find(evil + "0"), std::string::npos);
  size_t shown = 0;
  for (size_t p = text.find("<script>alert(1)"); p != std::string::npos; p = text.find("<script>alert(1)", p + 1)) ++shown;
  EXPECT_GE(shown, 6u) << text;
  EXPECT_TRUE(has_frame(page, evil + "1"));
  expect_zoom(page, evil + "2");
  // The timeline's legend carries the name too, as text.
  bool legend = false;
  for (const json& c : page["info"]["charts"])
    for (const json& s : c["series"]) legend |= s.get<std::string>() == evil + "0 (leak)";
  EXPECT_TRUE(legend) << page["info"]["charts"].dump();
}

TEST_F(HtmlReport, DiffIsColouredByChange) {
  report::Report base = hostile_report("base_fn_");
  report::Report now = base;
  now.stacks[0].bytes = {40960, 40960, 40960, 40960};  // base_fn_0 grew
  now.stacks.erase(now.stacks.begin() + 2);             // base_fn_2 freed
  const std::string a = temp_path("a.json"), b = temp_path("b.json"), out = temp_path("diff.html");
  ASSERT_TRUE(write_file_atomic(a, report::write_json(base)));
  ASSERT_TRUE(write_file_atomic(b, report::write_json(now)));
  RunResult r = run_argv({leakwatch(), "report", "--diff", a, b, "--format", "html", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string url = "file://" + out;
  json page = browse(url, "diff", "base_fn_0");
  expect_clean(page, url);
  EXPECT_TRUE(has_frame(page, "base_fn_0"));
  EXPECT_TRUE(has_frame(page, "base_fn_2"));  // shrinkage is drawn too
  EXPECT_NE(page["info"]["text"].get<std::string>().find("+36.0 KiB"), std::string::npos)
      << page["info"]["text"];
  EXPECT_NE(page["info"]["text"].get<std::string>().find("-12.0 KiB"), std::string::npos);
}

TEST_F(HtmlReport, AgentPagesOfAStoredInvestigation) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  // agent_grower leaks 2 MiB/s through mmap from touch_anon(): the agent triggers, runs a
  // 2 s growth step and a 3 s allocation trace, and stores them.
  Proc grower({fixture("agent_grower"), "leak", "2048"});
  ASSERT_TRUE(grower.wait_for("ready"));
  const std::string dir = temp_path("agent");
  fs::create_directories(dir);
  const std::string reports = dir + "/reports";
  const int port = free_port();
  const std::string config =
      write_agent_config(dir, grower.pid(), "127.0.0.1:" + std::to_string(port), 5);
  Proc agent({leakwatch(), "agent", "--config", config});
  json index = wait_for_stored(reports, std::chrono::seconds(40));
  ASSERT_FALSE(index.empty()) << "no investigation stored";
  const std::string id = index[0]["id"];
  const std::string origin = "http://127.0.0.1:" + std::to_string(port) + "/";

  // The list: one row linking to the investigation, with its memory sparkline.
  json list = browse(origin, "agent-list", "", "table.reports");
  expect_clean(list, origin);
  EXPECT_EQ(list["info"]["reportRows"], 1) << list["info"]["text"];
  EXPECT_EQ(list["info"]["scripts"], 0);
  EXPECT_NE(list["info"]["text"].get<std::string>().find("agent_grower"), std::string::npos);

  // The investigation: the memory around the trigger, both steps' flame graphs.
  json page = browse(origin + "reports/" + id, "agent-report", "touch_anon");
  expect_clean(page, origin);
  bool memory = false;
  for (const json& c : page["info"]["charts"])
    if (c["id"] == "memory-timeline") memory = c["points"].get<int>() >= 3;
  EXPECT_TRUE(memory) << page["info"]["charts"].dump();
  std::vector<std::string> growth = frame_names(page, "growth-chart");
  std::vector<std::string> memleak = frame_names(page, "memleak-chart");
  EXPECT_NE(std::find(growth.begin(), growth.end(), "touch_anon"), growth.end()) << json(growth).dump();
  EXPECT_NE(std::find(memleak.begin(), memleak.end(), "touch_anon"), memleak.end()) << json(memleak).dump();
  // touch_anon may carry every stack of a chart already: the zoom shows as its ancestors
  // fading, and it spans the chart.
  ASSERT_TRUE(page.contains("zoom"));
  EXPECT_TRUE(page["zoom"]["found"].get<bool>());
  EXPECT_NEAR(page["zoom"]["after"].get<double>(), page["info"]["svgWidth"].get<double>(), 2.0);
  EXPECT_GT(page["zoom"]["faded"].get<int>(), 0);

  // One finding, the investigation's: each step shows its largest stack, not a "no
  // finding" card of its own beside it.
  const std::string text = page["info"]["text"];
  EXPECT_NE(text.find("weighs this step with the other"), std::string::npos) << text;
  if (!index[0].value("top_function", std::string()).empty()) {
    EXPECT_EQ(text.find("did not name a leaking function"), std::string::npos) << text;
  }

  agent.signal(SIGTERM);
  int st = agent.wait(std::chrono::seconds(20));
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << agent.err();
}

}  // namespace
}  // namespace leakwatch::testing
