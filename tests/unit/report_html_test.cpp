// The HTML report's page: escaping of untrusted names everywhere they appear, the embedded
// data (a compact form of the JSON report), the size budget, and the page's frame (no
// reference to anything outside the file).  The page's drawing is tested in Chromium
// (tests/e2e/html_report_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "report/growth_report.h"
#include "report/html.h"
#include "report/html_writer.h"
#include "report/json_writer.h"
#include "report/web_assets.h"
#include "report_testing.h"

namespace leakwatch::report {
namespace {

using Json = nlohmann::ordered_json;
using testing::exact_report;
using testing::sampled_report;

const std::string kHostile = "<script>alert('x')</script><!--\"&'\xE2\x80\xA8\xE2\x80\xA9</SCRIPT >";

// The page's markup without the content of its <script> and <style> elements.
std::string markup_outside_scripts(const std::string& page) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t script = page.find("<script", pos), style = page.find("<style>", pos);
    size_t open = std::min(script, style);
    if (open == std::string::npos) break;
    const std::string close = open == script ? "</script>" : "</style>";
    size_t body = page.find('>', open) + 1;
    size_t end = page.find(close, body);
    if (end == std::string::npos) break;
    out += page.substr(pos, body - pos);
    pos = end;
  }
  return out + page.substr(pos);
}

// The data embedded in a page, parsed back.
Json page_data(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"lw-data\">";
  size_t b = page.find(open);
  if (b == std::string::npos) return nullptr;
  b += open.size();
  size_t e = page.find("</script>", b);
  return Json::parse(page.substr(b, e - b), nullptr, false);
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(ReportHtml, EscapesTextAndAttributes) {
  EXPECT_EQ(escape_html("a<b>&\"c\"'d'"), "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;");
  EXPECT_EQ(escape_html("plain ünïcode"), "plain ünïcode");
}

TEST(ReportHtml, JsonForScriptCannotEndTheElement) {
  Json data{{"name", kHostile}, {"nested", {{"k<!--", "</script>"}}}};
  std::string text = json_for_script(data);
  for (const char* bad : {"<", ">", "&", "\xE2\x80\xA8", "\xE2\x80\xA9"})
    EXPECT_EQ(text.find(bad), std::string::npos) << bad << " in " << text;
  EXPECT_EQ(Json::parse(text), data);  // the same value
  // Invalid UTF-8 is replaced, not fatal.
  EXPECT_NO_THROW(Json::parse(json_for_script(Json{{"x", std::string("a\xff")}})));
}

TEST(ReportHtml, AssetsAreEmbeddedAndHashed) {
  EXPECT_GT(web::app_js().size(), 10000u);
  EXPECT_GT(web::app_css().size(), 500u);
  EXPECT_TRUE(web::app_js_hash().starts_with("sha256-")) << web::app_js_hash();
  EXPECT_EQ(web::app_js().find("</script"), std::string_view::npos);
  EXPECT_NE(content_security_policy().find(std::string(web::app_js_hash())), std::string::npos);
}

TEST(ReportHtml, PageReferencesNothingOutsideTheFile) {
  std::string page = write_html(sampled_report());
  std::string markup = markup_outside_scripts(page);
  EXPECT_EQ(count(page, "<script"), 2u);  // the data and the script
  for (const char* ref : {" src=", " href=", "<link", "<img", "<iframe", "url(", "@import"})
    EXPECT_EQ(markup.find(ref), std::string::npos) << ref << "\n" << markup;
  EXPECT_EQ(std::string(web::app_css()).find("url("), std::string::npos);
  EXPECT_NE(markup.find("Content-Security-Policy"), std::string::npos);
  // Nothing may be fetched: default-src 'none' (quotes escaped in the attribute).
  EXPECT_NE(markup.find("default-src &#39;none&#39;"), std::string::npos) << markup;
}

TEST(ReportHtml, HostileNamesAreEscapedEverywhere) {
  Report r = exact_report();
  r.target.comm = kHostile;
  r.target.cgroup = kHostile;
  for (StackReport& s : r.stacks) {
    s.reason = kHostile;
    for (Frame& f : s.frames) {
      f.function = kHostile + f.function;
      f.module = kHostile;
      f.file = kHostile;
    }
  }
  r.notes.push_back(kHostile);
  r.finding = Finding{kHostile, kHostile, kHostile, 1, 1, 1, Verdict::kLeak, 0.5, kHostile, {kHostile}, kHostile, kHostile};
  for (const std::string& page : {write_html(r), write_diff_html(r)}) {
    // One data element and one script: no name opened an element of its own.
    EXPECT_EQ(count(page, "<script"), 2u);
    EXPECT_EQ(count(page, "</script>"), 2u);
    EXPECT_EQ(page.find("<!--"), std::string::npos);
    EXPECT_EQ(page.find("<script>alert"), std::string::npos);  // escaped in title and data
    EXPECT_EQ(page.find("\"&'"), std::string::npos);
    // The title and the heading (each naming the comm and the cgroup), escaped.
    EXPECT_EQ(count(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;!--&quot;&amp;&#39;"), 4u)
        << page.substr(0, 1500);
    Json data = page_data(page);
    ASSERT_TRUE(data.is_object());
    // The names reach the script intact: it sets them as text.
    EXPECT_EQ(data["memleak"]["target"]["comm"], kHostile);
    EXPECT_EQ(data["memleak"]["frames"][0][0].get<std::string>().substr(0, kHostile.size()), kHostile);
    EXPECT_EQ(data["memleak"]["notes"].back(), kHostile);
  }
}

TEST(ReportHtml, DataIsTheReportCompacted) {
  Report r = exact_report();
  r.timeline = Timeline{{1, 2}, {10, 20}, {5, 6}, {{7, {1, 2}}}};
  r.finding = Finding{"leak_fn(unsigned long)", "leaky_demo", "leaky_demo.cpp", 21, 1048576, 83886,
                      Verdict::kLeak, 0.93, "grows", {"allocation trace"}, "", "low"};
  Json doc = page_data(write_html(r));
  EXPECT_EQ(doc["kind"], "memleak");
  const Json& d = doc["memleak"];
  ASSERT_EQ(d["stacks"].size(), 3u);
  const Json& leak = d["stacks"][0];
  EXPECT_EQ(leak["id"], "7");  // a string: ids exceed JavaScript's exact integers
  EXPECT_EQ(leak["v"], "leak");
  EXPECT_EQ(leak["b"], Json::array({1048576, 1048576, 1048576, 1048576}));
  ASSERT_EQ(leak["f"].size(), 3u);
  EXPECT_EQ(d["frames"][leak["f"][0].get<size_t>()],
            Json::array({"leak_fn(unsigned long)", "leaky_demo", "/src/leaky_demo.cpp", 21}));
  // The frame each stack is named after, by the finding's rule: the leak's own; the cache's
  // past std::vector<char>::reserve, in Cache::put.
  EXPECT_EQ(leak["n"], 0);
  EXPECT_EQ(d["stacks"][1]["n"], 1);
  // libc's frame is shared by two stacks and listed once.
  EXPECT_EQ(d["stacks"][0]["f"][2], d["stacks"][1]["f"][4]);
  EXPECT_EQ(d["finding"]["function"], "leak_fn(unsigned long)");
  EXPECT_EQ(d["timeline"]["stacks"][0]["stack_id"], "7");
  EXPECT_EQ(d["timeline"]["t_s"], Json::array({1, 2}));
  EXPECT_EQ(d["omitted"]["stacks"], 0);
  EXPECT_FALSE(d.contains("truncated"));  // (operator[] of a const Json on a missing key is UB)
  EXPECT_TRUE(d["stacks"][2]["tr"].get<bool>());

  // A report without a finding gets the allocation trace's own: the culprit of its leak.
  Report none = exact_report();
  const Json own = page_data(write_html(none))["memleak"]["finding"];
  ASSERT_TRUE(own.is_object()) << own.dump();
  EXPECT_EQ(own["seen_by"], Json::array({"allocation trace"}));
  Report empty;  // nothing outstanding: no finding, the page says so, the data holds null
  EXPECT_TRUE(page_data(write_html(empty))["memleak"]["finding"].is_null());
}

TEST(ReportHtml, LargeReportsStayUnderBudget) {
  Report r;
  r.target = {1, "big", "", false};
  for (int i = 0; i < 4000; ++i) {
    StackReport s;
    s.stack_id = static_cast<uint64_t>(i);
    for (int k = 0; k < 12; ++k)
      s.frames.push_back(testing::app_frame(0x1000 + static_cast<uint64_t>(i * 16 + k),
                                            "function_number_" + std::to_string(i * 16 + k) + "(int)", 0, k));
    s.bytes = testing::exact(static_cast<double>(100000 - i));
    s.count = testing::exact(1);
    r.stacks.push_back(std::move(s));
  }
  std::string page = write_html(r);
  EXPECT_LT(page.size(), 1024u * 1024) << "a report page over 1 MB";
  Json d = page_data(page)["memleak"];
  const size_t kept = d["stacks"].size();
  EXPECT_GT(kept, 100u);
  EXPECT_LT(kept, 4000u);
  EXPECT_EQ(d["omitted"]["stacks"].get<size_t>(), 4000u - kept);
  double omitted_bytes = 0;
  for (size_t i = kept; i < 4000; ++i) omitted_bytes += static_cast<double>(100000 - i);
  EXPECT_DOUBLE_EQ(d["omitted"]["bytes"].get<double>(), omitted_bytes);
  // The largest are the ones kept.
  EXPECT_EQ(d["stacks"][0]["id"], "0");
}

TEST(ReportHtml, GrowthPage) {
  GrowthReport g;
  g.target = {42, kHostile, "", false};
  g.sample_period = 16;
  GrowthStack s;
  s.stack_id = 9;
  s.frames = {testing::app_frame(0x1200, "grow_heap_pages", 0x19, 30)};
  s.faulted_bytes = {4096, 65536, 60000, 70000};
  s.faults = {1, 16, 14, 18};
  s.mapped_bytes = 1 << 20;
  s.growth_bytes = 1 << 20;
  g.stacks = {s};
  g.processes = {{42, kHostile, {true, 0, 4096, 8192}, {}, {}, {}}};
  std::string page = write_growth_html(g);
  EXPECT_EQ(count(page, "<script"), 2u);
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  Json doc = page_data(page);
  EXPECT_EQ(doc["kind"], "growth");
  const Json& st = doc["growth"]["stacks"][0];
  EXPECT_EQ(st["id"], "9");
  EXPECT_EQ(st["fb"], Json::array({65536, 60000, 70000, 4096}));
  EXPECT_EQ(st["gb"], 1 << 20);
  EXPECT_EQ(doc["growth"]["processes"][0]["comm"], kHostile);
}

TEST(ReportHtml, InvestigationPage) {
  Json inv{{"request", {{"pid", 5}, {"comm", kHostile}, {"reason", kHostile}}},
           {"end", "duration"},
           {"memory", {{"trigger_unix_ms", 1000}, {"t_unix_ms", {0, 1000}}, {"anon_bytes", {1, 2}}, {"rss_bytes", {3, 4}}}}};
  Json report = Json::parse(write_json(exact_report()));
  std::string page = write_investigation_html(inv, report, nullptr);
  EXPECT_EQ(count(page, "<script"), 2u);
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  Json doc = page_data(page);
  EXPECT_EQ(doc["kind"], "investigation");
  EXPECT_EQ(doc["investigation"]["request"]["comm"], kHostile);
  EXPECT_EQ(doc["memleak"]["stacks"].size(), 3u);
  EXPECT_TRUE(doc["growth"].is_null());
}

}  // namespace
}  // namespace leakwatch::report
