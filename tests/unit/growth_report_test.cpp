// The growth report's writers: text, JSON, folded, and pprof with the growth sample types.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "profile.pb.h"
#include "report/growth_writer.h"
#include "report/pprof_writer.h"

namespace leakwatch::report {
namespace {

namespace pb = perftools::profiles;

Frame frame(uint64_t addr, const std::string& fn, const std::string& module) {
  Frame f;
  f.address = addr;
  f.function = fn;
  f.offset = 0x10;
  f.module = module;
  f.module_path = "/opt/app/" + module;
  f.module_offset = addr - 0x555500000000;
  return f;
}

GrowthReport sample_report() {
  GrowthReport r;
  r.target.pid = 1234;
  r.target.comm = "app";
  r.sample_period = 16;
  r.stack_walker = "fp";
  r.duration_s = 12.5;
  r.timestamp_unix_ms = 1700000000000;
  r.final = true;

  GrowthStack heap;
  heap.stack_id = 1;
  heap.pid = 1234;
  heap.frames = {frame(0x555500001100, "grow_heap_pages", "app"),
                 frame(0x555500001200, "main", "app")};
  heap.faults = {1024, 16384, 15400, 17368};
  heap.faulted_bytes = {1024.0 * 4096, 16384.0 * 4096, 15400.0 * 4096, 17368.0 * 4096};
  heap.growth_bytes = heap.faulted_bytes.estimate;

  GrowthStack maps;
  maps.stack_id = 2;
  maps.pid = 1234;
  maps.frames = {frame(0x7f0000001000, "__mmap", "libc.so.6"),
                 frame(0x555500001300, "keep_mappings", "app")};
  maps.mapped_bytes = 31457280;
  maps.mapped_regions = 8;
  maps.growth_bytes = maps.mapped_bytes;

  GrowthStack file;
  file.stack_id = 3;
  file.pid = 1234;
  file.frames = {frame(0x555500001400, "read_file_map", "app")};
  file.file_faulted_bytes = {16, 256, 200, 300};
  file.file_mapped_bytes = 16777216;

  r.stacks = {heap, maps, file};
  GrowthProcess p;
  p.pid = 1234;
  p.comm = "app";
  p.rss_anon = {true, 2 << 20, 66 << 20, 67 << 20};
  p.rss_file = {true, 1 << 20, 17 << 20, 17 << 20};
  r.processes = {p};
  r.totals.faults = 16700;
  r.totals.anon_faults = 16400;
  r.totals.file_faults = 300;
  r.totals.classes_estimated = true;
  r.totals.sampled_faults = 1044;
  r.totals.faulted_bytes = heap.faulted_bytes.estimate;
  r.totals.mapped_bytes = maps.mapped_bytes;
  r.totals.file_mapped_bytes = file.file_mapped_bytes;
  r.totals.mmap_calls = 19;
  r.totals.munmap_calls = 3;
  r.lost = {{"events_lost", 0}, {"stack_lost", 2}};
  r.notes = {"fault stacks sampled 1 in 16"};
  return r;
}

TEST(GrowthReport, TextNamesEachStackWithBothMeasures) {
  std::string t = write_growth_text(sample_report(), {10, "12:00:00"});
  EXPECT_NE(t.find("[12:00:00] Top 10 stacks by memory growth (pid 1234 app, 12.5 s):\n"),
            std::string::npos) << t;
  EXPECT_NE(t.find("\t67108864 bytes faulted (anonymous, 16384 faults), 0 bytes mapped, "
                   "from stack\n"
                   "\t\t0x0000555500001100\tgrow_heap_pages+0x10 [app]\n"
                   "\t\t0x0000555500001200\tmain+0x10 [app]\n"
                   "\t  estimated from 1 in 16 fault stacks (95% CI 63078400-71139328 bytes)\n"),
            std::string::npos) << t;
  EXPECT_NE(t.find("\t0 bytes faulted (anonymous, 0 faults), 31457280 bytes mapped, from stack\n"),
            std::string::npos) << t;
  EXPECT_NE(t.find("\t  also: 256 bytes of file-backed faults; 16777216 bytes of file mappings\n"),
            std::string::npos) << t;
  EXPECT_NE(t.find("RSS pid 1234 app: anon 2.0 MiB -> 66.0 MiB (peak 67.0 MiB), file 1.0 MiB -> "
                   "17.0 MiB (peak 17.0 MiB), shmem -, swap -\n"),
            std::string::npos) << t;
  EXPECT_NE(t.find("faults: 16700 (estimated: anonymous 16400, file 300, unknown 0); 1044 stacks "
                   "captured (1 in 16); anonymous faulted 64.0 MiB\n"),
            std::string::npos) << t;
  EXPECT_NE(t.find("lost: stack_lost=2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("note: fault stacks sampled 1 in 16\n"), std::string::npos) << t;
  // -T limits the stacks, not the summary.
  std::string one = write_growth_text(sample_report(), {1, "12:00:00"});
  EXPECT_EQ(one.find("keep_mappings"), std::string::npos);
  EXPECT_NE(one.find("RSS pid 1234"), std::string::npos);
}

TEST(GrowthReport, JsonHasEveryFigure) {
  auto j = nlohmann::json::parse(write_growth_json(sample_report()));
  EXPECT_EQ(j["version"], kGrowthReportVersion);
  EXPECT_EQ(j["kind"], "growth");
  EXPECT_EQ(j["target"]["pid"], 1234);
  EXPECT_EQ(j["sample_period"], 16);
  EXPECT_EQ(j["stack_walker"], "fp");
  ASSERT_EQ(j["stacks"].size(), 3u);
  const auto& s0 = j["stacks"][0];
  EXPECT_EQ(s0["frames"][0]["function"], "grow_heap_pages");
  EXPECT_EQ(s0["frames"][0]["address"], "0x555500001100");
  EXPECT_EQ(s0["faulted_bytes"]["estimate"], 67108864);
  EXPECT_EQ(s0["faulted_bytes"]["sampled"], 4194304);
  EXPECT_EQ(s0["faulted_bytes"]["ci95"][0], 15400 * 4096);
  EXPECT_EQ(s0["faults"]["estimate"], 16384);
  EXPECT_EQ(j["stacks"][1]["mapped_bytes"], 31457280);
  EXPECT_EQ(j["stacks"][1]["mapped_regions"], 8);
  EXPECT_EQ(j["stacks"][2]["file_mapped_bytes"], 16777216);
  EXPECT_EQ(j["processes"][0]["rss"]["anon"]["current"], 66 << 20);
  EXPECT_TRUE(j["processes"][0]["rss"]["swap"].is_null());
  EXPECT_EQ(j["totals"]["faults"], 16700);
  EXPECT_EQ(j["totals"]["classes_estimated"], true);
  EXPECT_EQ(j["totals"]["mmap_calls"], 19);
  EXPECT_EQ(j["lost"]["stack_lost"], 2);
  EXPECT_EQ(j["notes"][0], "fault stacks sampled 1 in 16");
}

TEST(GrowthReport, JsonHasTheUnwindingFigures) {
  GrowthReport r = sample_report();
  r.stack_walker = "dwarf";
  r.unwind = {"dwarf", "DWARF unwinding (auto): 3 of 200 functions of libc.so.6 set up a frame pointer",
              8192, 1000, 812000, 990, 12, 10, 31.5};
  auto j = nlohmann::json::parse(write_growth_json(r));
  EXPECT_EQ(j["stack_walker"], "dwarf");
  const auto& u = j["unwind"];
  EXPECT_EQ(u["mode"], "dwarf");
  EXPECT_EQ(u["decision"], r.unwind.decision);
  EXPECT_EQ(u["snapshot_size"], 8192);
  EXPECT_EQ(u["snapshots"], 1000);
  EXPECT_EQ(u["snapshot_bytes"], 812000);
  EXPECT_EQ(u["unwound"], 990);
  EXPECT_EQ(u["truncated"], 12);
  EXPECT_EQ(u["failed"], 10);
  EXPECT_EQ(u["unwind_ms"], 31.5);
}

TEST(GrowthReport, FoldedWeighsByGrowth) {
  auto out = render_growth(sample_report(), Format::kFolded, {});
  ASSERT_TRUE(out);
  EXPECT_NE(out->find("main;grow_heap_pages 67108864\n"), std::string::npos) << *out;
  EXPECT_NE(out->find("keep_mappings;__mmap 31457280\n"), std::string::npos) << *out;
  // No anonymous growth: no line (file-backed growth is not heap growth).
  EXPECT_EQ(out->find("read_file_map"), std::string::npos) << *out;
}

TEST(GrowthReport, PprofHasTheGrowthSampleTypes) {
  GrowthReport r = sample_report();
  PprofSampleTypes types;
  types.types = {{"faulted_bytes", "bytes"}, {"mapped_bytes", "bytes"}, {"faults", "count"}};
  types.default_type = "faulted_bytes";
  for (const auto& s : r.stacks)
    types.values.push_back({static_cast<int64_t>(s.faulted_bytes.estimate),
                            static_cast<int64_t>(s.mapped_bytes),
                            static_cast<int64_t>(s.faults.estimate)});
  types.sampling_comment = "sampling: growth";
  auto raw = write_pprof_uncompressed(growth_as_report(r), types);
  ASSERT_TRUE(raw) << raw.error().message;
  pb::Profile p;
  ASSERT_TRUE(p.ParseFromString(*raw));
  auto str = [&](int64_t i) { return p.string_table(static_cast<int>(i)); };
  ASSERT_EQ(p.sample_type_size(), 3);
  EXPECT_EQ(str(p.sample_type(0).type()), "faulted_bytes");
  EXPECT_EQ(str(p.sample_type(0).unit()), "bytes");
  EXPECT_EQ(str(p.sample_type(1).type()), "mapped_bytes");
  EXPECT_EQ(str(p.sample_type(2).type()), "faults");
  EXPECT_EQ(str(p.sample_type(2).unit()), "count");
  EXPECT_EQ(str(p.default_sample_type()), "faulted_bytes");
  ASSERT_EQ(p.sample_size(), 3);
  EXPECT_EQ(p.sample(0).value(0), 67108864);
  EXPECT_EQ(p.sample(0).value(2), 16384);
  EXPECT_EQ(p.sample(1).value(1), 31457280);
  bool comment = false;
  for (int64_t c : p.comment()) comment |= str(c) == "sampling: growth";
  EXPECT_TRUE(comment);

  // The gzipped form through render_growth decodes to the same types.
  auto gz = render_growth(r, Format::kPprof, {});
  ASSERT_TRUE(gz);
  EXPECT_GT(gz->size(), 20u);
  EXPECT_EQ(static_cast<unsigned char>((*gz)[0]), 0x1f);  // gzip magic
}

TEST(GrowthReport, PprofRejectsMismatchedValues) {
  Report r = growth_as_report(sample_report());
  PprofSampleTypes types;
  types.types = {{"faulted_bytes", "bytes"}};
  EXPECT_FALSE(write_pprof_uncompressed(r, types));  // no rows
  types.values = {{1}, {2}, {3, 4}};
  EXPECT_FALSE(write_pprof_uncompressed(r, types));  // a row of the wrong width
  types.values = {{1}, {2}, {3}};
  EXPECT_TRUE(write_pprof_uncompressed(r, types));
}

}  // namespace
}  // namespace leakwatch::report
