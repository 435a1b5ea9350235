#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "report/json_writer.h"
#include "report_testing.h"

namespace leakwatch::report {
namespace {

using namespace testing;

TEST(ReportJson, ExactMatchesGolden) { expect_golden("report_exact.json", write_json(exact_report())); }

TEST(ReportJson, SampledMatchesGolden) {
  expect_golden("report_sampled.json", write_json(sampled_report()));
}

// The checked-in files stay readable: a reader change that breaks old reports fails here.
TEST(ReportJson, GoldenFilesReadBack) {
  auto exact = read_json(read_text_file(golden_path("report_exact.json")));
  ASSERT_TRUE(exact) << exact.error().message;
  EXPECT_EQ(*exact, exact_report());
  auto sampled = read_json(read_text_file(golden_path("report_sampled.json")));
  ASSERT_TRUE(sampled) << sampled.error().message;
  EXPECT_EQ(*sampled, sampled_report());
}

TEST(ReportJson, RoundTripIsExact) {
  Report odd = sampled_report();
  odd.target.cgroup = "/sys/fs/cgroup/app.slice";
  odd.stacks[0].score = 0.1 + 0.2;  // not representable in few digits
  odd.stacks[0].bytes.ci_lo = 1.0 / 3.0;
  odd.stacks[1].frames[0].address = 0xffffffffffffffffULL;  // beyond 2^53
  odd.stacks[1].frames[0].line = -1;
  odd.notes = {"unicode: \xc3\xa9t\xc3\xa9", "quote \" and backslash \\"};
  odd.finding = Finding{"Cache::insert(int)", "server", "cache.cpp", 42, 1.5e6, 2048.5,
                        Verdict::kLeak, 0.875, "grows 2 KiB/s", {"allocation trace", "growth step"},
                        "agree", "medium"};
  odd.timeline = Timeline{{1, 2.5, 4}, {0, 4096, 8192.5}, {1e6, 1.5e6, 2e6},
                          {{1, {0, 4096, 8000}}, {0xffffffffffffffffULL, {0, 0, 192.5}}}};
  for (const Report& r : {exact_report(), sampled_report(), kernel_report(), Report{}, odd}) {
    auto back = read_json(write_json(r));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, r);
    EXPECT_EQ(write_json(*back), write_json(r));
  }
}

TEST(ReportJson, SchemaOfIssue3) {
  auto j = nlohmann::json::parse(write_json(sampled_report()));
  EXPECT_EQ(j["version"], kReportVersion);
  EXPECT_EQ(j["target"]["pid"], 977);
  EXPECT_EQ(j["target"]["comm"], "server");
  EXPECT_FALSE(j["target"].contains("cgroup"));
  EXPECT_FALSE(j["target"].contains("kernel"));
  EXPECT_EQ(j["sampling"]["mode"], "bytes");
  EXPECT_EQ(j["sampling"]["rate"], 524288);
  EXPECT_EQ(j["duration_s"], 60.25);
  const auto& s = j["stacks"][0];
  EXPECT_EQ(s["frames"][0]["function"], "Session::append(std::string_view)");
  EXPECT_EQ(s["frames"][0]["module"], "leaky_demo");
  EXPECT_EQ(s["frames"][0]["offset"], 0x3c);
  EXPECT_EQ(s["frames"][0]["file"], "/src/leaky_demo.cpp");
  EXPECT_EQ(s["frames"][0]["line"], 140);
  EXPECT_EQ(s["frames"][0]["address"], "0x55d0c1a02010");
  EXPECT_EQ(s["bytes"]["sampled"], 3145728);
  EXPECT_EQ(s["bytes"]["estimate"], 52428800.5);
  EXPECT_EQ(s["bytes"]["ci95"], nlohmann::json::array({44040192.25, 60817408.75}));
  EXPECT_EQ(s["count"]["estimate"], 51200.4);
  EXPECT_EQ(s["verdict"], "leak");
  EXPECT_EQ(s["score"], 0.97);
  EXPECT_TRUE(s["reason"].is_string());
  EXPECT_EQ(s["growth_bytes_per_s"], 870187.3);
  EXPECT_EQ(s["oldest_age_s"], 59.8);
  EXPECT_FALSE(s.contains("allocations"));  // only when non-empty
  EXPECT_EQ(j["lost"]["allocs_map_full"], 12);
  EXPECT_EQ(j["lost"]["attach_failed"], 0);  // every counter, zero or not
  EXPECT_TRUE(j["notes"].is_array());

  auto k = nlohmann::json::parse(write_json(kernel_report()));
  EXPECT_EQ(k["target"]["kernel"], true);
  auto e = nlohmann::json::parse(write_json(exact_report()));
  EXPECT_EQ(e["stacks"][0]["allocations"].size(), 2u);
  EXPECT_EQ(e["stacks"][0]["allocations"][0]["size"], 4096);
}

TEST(ReportJson, NonFiniteNumbersBecomeNull) {
  Report r;
  StackReport s;
  s.score = std::nan("");
  s.growth_bytes_per_s = INFINITY;
  r.stacks = {s};
  std::string text = write_json(r);
  auto j = nlohmann::json::parse(text);
  EXPECT_TRUE(j["stacks"][0]["score"].is_null());
  EXPECT_TRUE(j["stacks"][0]["growth_bytes_per_s"].is_null());
  auto back = read_json(text);
  ASSERT_TRUE(back);
  EXPECT_TRUE(std::isnan(back->stacks[0].score));
}

TEST(ReportJson, MinimalHandWrittenReport) {
  auto r = read_json(R"({"version": 1, "stacks": [{"frames": [{"function": "f", "address": 4096}],
                        "bytes": {"sampled": 10, "estimate": 10}}]})");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->stacks.size(), 1u);
  EXPECT_EQ(r->stacks[0].frames[0].address, 4096u);
  EXPECT_EQ(r->stacks[0].bytes.ci_lo, 10);  // no interval given: the exact figure
  EXPECT_EQ(r->stacks[0].bytes.ci_hi, 10);
  EXPECT_EQ(r->sampling.mode, SamplingMode::kExact);
}

TEST(ReportJson, ErrorsNameTheField) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"{", "parse error"},
      {"[]", "$: expected a JSON object"},
      {R"({"stacks": []})", "missing \"version\""},
      {R"({"version": 99})", "$.version: version 99 is not supported"},
      {R"({"version": 1, "sampling": {"mode": "sometimes"}})", "$.sampling.mode: unknown mode"},
      {R"({"version": 1, "stacks": [{"bytes": {"estimate": "lots"}}]})",
       "$.stacks[0].bytes.estimate: expected a number"},
      {R"({"version": 1, "stacks": [{"bytes": {"ci95": [1]}}]})", "$.stacks[0].bytes.ci95"},
      {R"({"version": 1, "stacks": [{}, {"frames": [{"address": "0xZZ"}]}]})",
       "$.stacks[1].frames[0].address: expected a hex address"},
      {R"({"version": 1, "stacks": [{"verdict": "maybe"}]})", "unknown verdict \"maybe\""},
      {R"({"version": 1, "lost": {"stack_lost": -1}})", "$.lost.stack_lost"},
      {R"({"version": 1, "notes": [1]})", "$.notes[0]: expected a string"},
  };
  for (const Case& c : cases) {
    auto r = read_json(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().message.find(c.expected), std::string::npos)
        << c.text << " -> " << r.error().message;
    EXPECT_TRUE(r.error().message.starts_with("report JSON: ")) << r.error().message;
  }
}

TEST(ReportJson, TimelineSeriesHaveOneValuePerTime) {
  Report r = exact_report();
  r.timeline = Timeline{{1, 2}, {10, 20}, {}, {{7, {5, 6}}}};
  auto back = read_json(write_json(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->timeline, r.timeline);
  EXPECT_TRUE(back->timeline->rss_bytes.empty());  // never read: no values at all

  // An RSS that could not be read at one report is null, and NaN again when read back.
  r.timeline->rss_bytes = {std::numeric_limits<double>::quiet_NaN(), 3e6};
  std::string text = write_json(r);
  EXPECT_NE(text.find("\"rss_bytes\": [\n      null,"), std::string::npos) << text;
  back = read_json(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(std::isnan(back->timeline->rss_bytes[0]));
  EXPECT_EQ(back->timeline->rss_bytes[1], 3e6);

  r.timeline = Timeline{{1, 2}, {10, 20}, {}, {{7, {5}}}};
  auto bad = read_json(write_json(r));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("$.timeline.stacks[0].bytes"), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace leakwatch::report
