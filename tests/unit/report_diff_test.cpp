#include <gtest/gtest.h>

#include <cmath>

#include "report/diff.h"
#include "report_testing.h"

namespace leakwatch::report {
namespace {

using namespace testing;

// The same program 60 s later, loaded at other addresses: the leak grew, the cache stayed,
// the unknown stack went away, a new stack appeared.
Report later() {
  Report r = exact_report();
  r.timestamp_unix_ms += 60000;
  r.duration_s += 60;
  for (StackReport& s : r.stacks)
    for (Frame& f : s.frames) f.address += 0x100000;  // another ASLR base
  r.stacks[0].bytes = exact(1048576 * 6);
  r.stacks[0].count = exact(256 * 6);
  r.stacks.pop_back();  // the unknown stack is gone
  StackReport fresh;
  fresh.frames = {app_frame(0x1900, "Fresh::make()", 0x8, 9)};
  fresh.bytes = exact(100);
  fresh.count = exact(1);
  r.stacks.push_back(fresh);
  return r;
}

TEST(ReportDiff, MatchesByCallPathAndOrdersByGrowth) {
  Report d = diff_reports(exact_report(), later());
  // the cache did not change: left out
  ASSERT_EQ(d.stacks.size(), 3u);
  EXPECT_EQ(d.stacks[0].frames[0].function, "leak_fn(unsigned long)");
  EXPECT_EQ(d.stacks[0].bytes, exact(1048576 * 5));
  EXPECT_EQ(d.stacks[0].count, exact(256 * 5));
  EXPECT_EQ(d.stacks[0].frames[0].address, kAppBase + 0x11c9 + 0x100000);  // NOW's frames
  EXPECT_EQ(d.stacks[0].verdict, Verdict::kLeak);
  EXPECT_EQ(d.stacks[1].frames[0].function, "Fresh::make()");
  EXPECT_EQ(d.stacks[1].bytes.estimate, 100);
  EXPECT_EQ(d.stacks[2].frames[0].module, "libplugin.so");
  EXPECT_EQ(d.stacks[2].bytes.estimate, -4000);
  EXPECT_EQ(d.stacks[2].count.estimate, -2);
  EXPECT_EQ(d.stacks[2].reason, "absent from the newer report");
  EXPECT_EQ(d.duration_s, 60);
  EXPECT_EQ(d.timestamp_unix_ms, later().timestamp_unix_ms);
  ASSERT_FALSE(d.notes.empty());
  EXPECT_TRUE(d.notes[0].starts_with("diff: "));
}

TEST(ReportDiff, SampledIntervalsCombine) {
  Report base = sampled_report();
  Report now = sampled_report();
  now.stacks[0].bytes = {4194304, 62428800.5, 52428800.5, 72428800.5};  // +-10 MB
  Report d = diff_reports(base, now);
  ASSERT_EQ(d.stacks.size(), 1u);
  const Estimate& b = d.stacks[0].bytes;
  EXPECT_EQ(b.sampled, 1048576);
  EXPECT_DOUBLE_EQ(b.estimate, 10000000);
  // half-widths 10 MB and 8.39 MB (the base's wider side) in quadrature
  double half = std::hypot(10000000.0, 60817408.75 - 52428800.5);
  EXPECT_NEAR(b.ci_hi - b.estimate, half, 1e-6);
  EXPECT_NEAR(b.estimate - b.ci_lo, half, 1e-6);
}

TEST(ReportDiff, DuplicatePathsInOneReportAreSummed) {
  Report base = exact_report();
  Report now = exact_report();
  StackReport twin = now.stacks[0];
  for (Frame& f : twin.frames) f.address += 8;
  twin.bytes = exact(10);
  twin.count = exact(1);
  now.stacks.push_back(twin);
  Report d = diff_reports(base, now);
  ASSERT_EQ(d.stacks.size(), 1u);
  EXPECT_EQ(d.stacks[0].bytes.estimate, 10);
  EXPECT_EQ(d.stacks[0].count.estimate, 1);
}

TEST(ReportDiff, IdenticalReportsHaveNoStacks) {
  EXPECT_TRUE(diff_reports(exact_report(), exact_report()).stacks.empty());
  Report other = exact_report();
  other.sampling = {SamplingMode::kCalls, 10};
  Report d = diff_reports(exact_report(), other);
  ASSERT_EQ(d.notes.size(), 2u);
  EXPECT_NE(d.notes[1].find("sampled differently"), std::string::npos);
}

}  // namespace
}  // namespace leakwatch::report
