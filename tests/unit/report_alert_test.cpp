#include <gtest/gtest.h>

#include "report/alert.h"
#include "report_testing.h"

namespace leakwatch::report {
namespace {

using namespace testing;

Report with_leak_mb(double leak_mb, double cache_mb) {
  Report r = exact_report();
  r.stacks[0].bytes = exact(leak_mb * kBytesPerMb);   // verdict leak
  r.stacks[1].bytes = exact(cache_mb * kBytesPerMb);  // verdict cache: never counted
  r.stacks[2].bytes = exact(0.5 * kBytesPerMb);       // verdict unknown: counted
  return r;
}

TEST(ReportAlert, Thresholds) {
  Alert a = evaluate_alert(with_leak_mb(120, 500), 50);
  EXPECT_EQ(a.severity, "high");
  EXPECT_DOUBLE_EQ(a.suspect_bytes, 120.5 * kBytesPerMb);
  EXPECT_EQ(a.suspect_stacks, 2u);
  EXPECT_EQ(a.top_function, "leak_fn(unsigned long)");
  EXPECT_EQ(a.top_module, "leaky_demo");
  EXPECT_DOUBLE_EQ(a.top_bytes, 120 * kBytesPerMb);
  EXPECT_EQ(a.text,
            "ALERT high: pid 4242 (leaky_demo): 120.5 MB outstanding in 2 leak/unknown stacks "
            "(threshold 50 MB, high above 100 MB); top: leak_fn(unsigned long) [leaky_demo] "
            "with 120.0 MB (leak)");

  EXPECT_EQ(evaluate_alert(with_leak_mb(60, 500), 50).severity, "medium");
  // exactly 100 MB of suspects is not above 100
  EXPECT_EQ(evaluate_alert(with_leak_mb(99.5, 0), 50).severity, "medium");
  EXPECT_EQ(evaluate_alert(with_leak_mb(99.6, 0), 50).severity, "high");
  // caches do not count, however large
  Alert ok = evaluate_alert(with_leak_mb(10, 5000), 50);
  EXPECT_EQ(ok.severity, "none");
  EXPECT_TRUE(ok.text.starts_with("OK: pid 4242 (leaky_demo): 10.5 MB")) << ok.text;
  // the medium threshold above 100 MB: high still wins
  EXPECT_EQ(evaluate_alert(with_leak_mb(150, 0), 200).severity, "high");
}

TEST(ReportAlert, UsesEstimatesAndPicksLargestSuspect) {
  Report r = sampled_report();  // leak estimate 50 MB from 3 MB sampled
  Alert a = evaluate_alert(r, 40);
  EXPECT_EQ(a.severity, "medium");
  EXPECT_DOUBLE_EQ(a.suspect_bytes, 52428800.5);  // the transient stack is not a suspect
  EXPECT_EQ(a.top_function, "Session::append(std::string_view)");

  r.stacks[1].verdict = Verdict::kUnknown;
  r.stacks[1].bytes.estimate = 60 * kBytesPerMb;
  a = evaluate_alert(r, 40);
  EXPECT_EQ(a.severity, "high");
  EXPECT_EQ(a.top_function, "Parser::on<';'>(char)");
}

TEST(ReportAlert, EmptyAndUnknownFrames) {
  Alert a = evaluate_alert(Report{}, 1);
  EXPECT_EQ(a.severity, "none");
  EXPECT_EQ(a.suspect_stacks, 0u);
  EXPECT_EQ(a.top_function, "");

  Report r = exact_report();
  r.stacks = {r.stacks[2]};
  r.stacks[0].bytes = exact(2 * kBytesPerMb);
  a = evaluate_alert(r, 1);
  EXPECT_EQ(a.severity, "medium");
  EXPECT_EQ(a.top_function, "[libplugin.so]");
}

}  // namespace
}  // namespace leakwatch::report
