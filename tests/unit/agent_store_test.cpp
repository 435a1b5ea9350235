// Report store (atomic files, index, pruning, reopen) and the Prometheus text builder.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "agent/exposition.h"
#include "agent/report_store.h"
#include "common/atomic_file.h"
#include "common/clock.h"
#include "report/json_writer.h"

namespace leakwatch::agent {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lw-agent-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

InvestigationResult leak_result(const std::string& function, double bytes) {
  InvestigationResult r;
  r.report.target.pid = 4242;
  r.report.target.comm = "myservice";
  r.report.duration_s = 12.5;
  r.report.final = true;
  r.report.sampling = {report::SamplingMode::kCalls, 100};
  report::StackReport s;
  s.stack_id = 7;
  report::Frame malloc_frame;
  malloc_frame.function = "malloc";
  malloc_frame.module = "libc.so.6";
  malloc_frame.address = 0x7f0000001000;
  report::Frame leaker;
  leaker.function = function;
  leaker.module = "myservice";
  leaker.address = 0x401234;
  report::Frame main_frame;
  main_frame.function = "main";
  main_frame.address = 0x401000;
  s.frames = {malloc_frame, leaker, main_frame};
  s.bytes = {bytes / 100, bytes, bytes * 0.8, bytes * 1.2};
  s.count = {10, 1000, 800, 1200};
  s.verdict = report::Verdict::kLeak;
  r.report.stacks.push_back(s);
  r.report.lost = {{"allocs_map_full", 3}, {"stack_lost", 2}};
  r.overhead.overhead_percent = 1.5;
  r.end = InvestigationEnd::kOverheadBudget;
  return r;
}

InvestigationRequest request() {
  InvestigationRequest q;
  q.pid = 4242;
  q.comm = "my service/1";  // sanitized in the directory name
  q.target = "comm:myservice";
  q.sampling = {report::SamplingMode::kCalls, 100};
  q.reason = "memory_growth_rate +12.0 MiB/min";
  return q;
}

TEST(AgentReportStore, StoresAllFilesAtomicallyWithAnIndex) {
  TempDir tmp;
  auto store = ReportStore::open(tmp.path() + "/reports", ReportsConfig{});
  ASSERT_TRUE(store) << store.error().message;
  const int64_t now = unix_ms_now();
  auto e = (*store)->store(request(), leak_result("parse_request", 4e6), now - 12500, now);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->top_function, "parse_request");  // the first frame above the allocator
  EXPECT_DOUBLE_EQ(e->top_bytes, 4e6);
  EXPECT_EQ(e->lost, 5u);
  EXPECT_EQ(e->end, "overhead_budget");
  EXPECT_NE(e->id.find("my_service_1-4242"), std::string::npos) << e->id;

  const std::string dir = tmp.path() + "/reports/" + e->id;
  for (const char* f : {"report.json", "report.txt", "profile.pb.gz", "investigation.json"})
    EXPECT_TRUE(fs::is_regular_file(dir + "/" + f)) << f;
  // Nothing temporary left behind.
  for (const auto& entry : fs::recursive_directory_iterator(tmp.path()))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();

  // The JSON report reads back into the same report.
  auto back = report::read_json(read_file(dir + "/report.json").value());
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->stacks.size(), 1u);
  EXPECT_EQ(back->stacks[0].frames[1].function, "parse_request");
  // The text report is BCC's format.
  std::string txt = read_file(dir + "/report.txt").value();
  EXPECT_NE(txt.find("bytes in"), std::string::npos) << txt;
  EXPECT_NE(txt.find("parse_request"), std::string::npos);

  auto index = nlohmann::json::parse(read_file(tmp.path() + "/reports/index.json").value());
  ASSERT_TRUE(index.is_array());
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0]["id"], e->id);
  EXPECT_EQ(index[0]["top_function"], "parse_request");
  EXPECT_EQ(index[0]["reason"], "memory_growth_rate +12.0 MiB/min");
  EXPECT_EQ(nlohmann::json::parse((*store)->index_json()), index);

  auto inv = nlohmann::json::parse(read_file(dir + "/investigation.json").value());
  EXPECT_EQ(inv["end"], "overhead_budget");
  EXPECT_DOUBLE_EQ(inv["overhead"]["overhead_percent"].get<double>(), 1.5);
  EXPECT_EQ(inv["request"]["sampling"]["mode"], "calls");
  EXPECT_EQ(inv["request"]["sampling"]["rate"], 100);
}

TEST(AgentReportStore, PrunesByCountThenAgeAndSurvivesReopen) {
  TempDir tmp;
  ReportsConfig keep3;
  keep3.max_count = 3;
  keep3.max_age_s = 3600;
  auto store = ReportStore::open(tmp.path(), keep3).value();
  const int64_t now = unix_ms_now();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto e = store->store(request(), leak_result("f" + std::to_string(i), 1e6),
                          now - (10 - i) * 1000, now - (10 - i) * 1000 + 500);
    ASSERT_TRUE(e) << e.error().message;
    ids.push_back(e->id);
  }
  auto list = store->list();
  ASSERT_EQ(list.size(), 3u);  // the two oldest went
  EXPECT_EQ(list[0].top_function, "f2");
  EXPECT_EQ(list[2].top_function, "f4");
  EXPECT_FALSE(fs::exists(tmp.path() + "/" + ids[0]));
  EXPECT_FALSE(fs::exists(tmp.path() + "/" + ids[1]));
  EXPECT_TRUE(fs::exists(tmp.path() + "/" + ids[4]));
  EXPECT_EQ(store->pruned_total(), 2u);

  // Reopen: the index is read back; a report whose directory vanished is dropped.
  fs::remove_all(tmp.path() + "/" + ids[2]);
  store.reset();
  auto again = ReportStore::open(tmp.path(), keep3).value();
  ASSERT_EQ(again->list().size(), 2u);
  EXPECT_EQ(again->list()[0].top_function, "f3");

  // Age: an hour later, everything is older than max_age.
  EXPECT_EQ(again->prune(now + 3601 * 1000), 2u);
  EXPECT_TRUE(again->list().empty());
  EXPECT_EQ(nlohmann::json::parse(read_file(tmp.path() + "/index.json").value()).size(), 0u);
}

// A growth step's report alone (the target exited during it): stored with its own files,
// summarised in the index past memset and the mmap wrapper, and read back on reopen.
TEST(AgentReportStore, StoresAGrowthReportAndReadsItsSummaryBack) {
  TempDir tmp;
  auto store = ReportStore::open(tmp.path(), ReportsConfig{}).value();
  InvestigationRecord rec;
  rec.request = request();
  rec.end = "target_exited";
  rec.memleak_error = "not run: the growth step ended with target_exited";
  rec.started_unix_ms = unix_ms_now() - 3000;
  rec.finished_unix_ms = unix_ms_now();
  // Neither report: refused, nothing written.
  auto empty = store->store(rec);
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("nothing to store"), std::string::npos);
  EXPECT_TRUE(store->list().empty());

  GrowthStep& step = rec.growth.emplace();
  step.requested_s = 30;
  step.outcome = "target_exited";
  GrowthResult& g = step.result.emplace();
  g.end = InvestigationEnd::kTargetExited;
  g.report.target.pid = 4242;
  g.report.target.comm = "myservice";
  g.report.final = true;
  g.report.duration_s = 2.5;
  auto frame = [](const char* fn, const char* module) {
    report::Frame f;
    f.function = fn;
    f.module = module;
    return f;
  };
  report::GrowthStack touched;
  touched.frames = {frame("__memset_avx2_unaligned_erms", "libc.so.6"),
                    frame("fill_cache", "myservice"), frame("main", "myservice")};
  touched.faulted_bytes = {512, 8 << 20, 7 << 20, 9 << 20};
  touched.growth_bytes = 8 << 20;
  report::GrowthStack mapped;
  mapped.frames = {frame("__mmap", "libc.so.6"), frame("map_region", "myservice")};
  mapped.mapped_bytes = 1 << 20;
  mapped.growth_bytes = 1 << 20;
  g.report.stacks = {touched, mapped};
  g.report.totals.faulted_bytes = 8 << 20;
  g.report.totals.mapped_bytes = 1 << 20;
  g.report.lost = {{"stack_lost", 3}};

  auto e = store->store(rec);
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->files, (std::vector<std::string>{"growth.json", "growth.txt", "growth.pb.gz",
                                                "investigation.json"}));
  EXPECT_EQ(e->end, "target_exited");
  EXPECT_EQ(e->stacks, 0u);  // no allocation report
  EXPECT_TRUE(e->top_function.empty());
  ASSERT_TRUE(e->growth);
  EXPECT_EQ(e->growth->top_function, "fill_cache");
  EXPECT_DOUBLE_EQ(e->growth->top_bytes, 8 << 20);
  const std::string dir = tmp.path() + "/" + e->id;
  EXPECT_FALSE(fs::exists(dir + "/report.json"));
  auto inv = nlohmann::json::parse(read_file(dir + "/investigation.json").value());
  EXPECT_EQ(inv["growth"]["outcome"], "target_exited");
  EXPECT_DOUBLE_EQ(inv["growth"]["duration_s"].get<double>(), 2.5);
  EXPECT_FALSE(inv.contains("overhead"));
  std::string txt = read_file(dir + "/growth.txt").value();
  EXPECT_NE(txt.find("fill_cache"), std::string::npos) << txt;

  store.reset();
  auto again = ReportStore::open(tmp.path(), ReportsConfig{}).value();
  const std::vector<StoredReport> list = again->list();
  ASSERT_EQ(list.size(), 1u);
  const StoredReport& back = list[0];
  ASSERT_TRUE(back.growth);
  EXPECT_EQ(back.growth->outcome, "target_exited");
  EXPECT_EQ(back.growth->top_function, "fill_cache");
  EXPECT_EQ(back.growth->stacks, 2u);
  EXPECT_DOUBLE_EQ(back.growth->faulted_bytes, 8 << 20);
  EXPECT_DOUBLE_EQ(back.growth->mapped_bytes, 1 << 20);
  EXPECT_EQ(back.growth->lost, 3u);
  EXPECT_EQ(back.memleak_error, rec.memleak_error);
  EXPECT_EQ(back.files, e->files);
}

TEST(AgentReportStore, RejectsACorruptIndexAndAnUncreatableDir) {
  TempDir tmp;
  ASSERT_TRUE(write_file_atomic(tmp.path() + "/index.json", "{not json"));
  auto bad = ReportStore::open(tmp.path(), ReportsConfig{});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("index.json"), std::string::npos);
  ASSERT_TRUE(write_file_atomic(tmp.path() + "/file", "x"));
  auto blocked = ReportStore::open(tmp.path() + "/file/reports", ReportsConfig{});
  ASSERT_FALSE(blocked);
  EXPECT_NE(blocked.error().message.find("reports_dir"), std::string::npos);
}

TEST(AgentExposition, GroupsFamiliesAndEscapes) {
  Exposition x;
  x.gauge("a_bytes", "A help", {{"target", "comm:x"}}, 5);
  x.counter("b_total", "B help", {}, 2);
  x.gauge("a_bytes", "ignored", {{"target", "say \"hi\"\\\n"}}, 1.5);
  x.gauge("c", "C", {}, INFINITY);
  EXPECT_EQ(x.text(),
            "# HELP a_bytes A help\n# TYPE a_bytes gauge\n"
            "a_bytes{target=\"comm:x\"} 5\n"
            "a_bytes{target=\"say \\\"hi\\\"\\\\\\n\"} 1.5\n"
            "# HELP b_total B help\n# TYPE b_total counter\nb_total 2\n"
            "# HELP c C\n# TYPE c gauge\nc +Inf\n");
  EXPECT_EQ(Exposition::format_value(1e20), "1e+20");
  EXPECT_EQ(Exposition::format_value(NAN), "NaN");
}

}  // namespace
}  // namespace leakwatch::agent
