// The overhead guard's estimate and stop decision (analysis/overhead_guard.h).
#include <gtest/gtest.h>

#include "analysis/overhead_guard.h"

namespace leakwatch::analysis {
namespace {

TEST(OverheadGuard, CostIsTrapsPlusBpfRunTime) {
  OverheadGuard g(10, {5000, 1000, "test"});
  OverheadReading r;
  r.entry_hits = 1000;
  r.return_hits = 100;
  r.bpf_run_ns = 400000;  // 0.4 ms
  r.target_cpu_s = 1.0;
  const OverheadEstimate& e = g.update(r);
  EXPECT_DOUBLE_EQ(e.trap_cost_s, (1000 * 5000.0 + 100 * 1000.0) / 1e9);
  EXPECT_DOUBLE_EQ(e.bpf_cost_s, 0.0004);
  EXPECT_DOUBLE_EQ(e.estimated_cost_s, e.trap_cost_s + e.bpf_cost_s);
  EXPECT_EQ(e.probe_hits, 1100u);
  EXPECT_NEAR(e.per_hit_cost_ns, e.estimated_cost_s * 1e9 / 1100, 1e-6);
  // Overhead is the cost over the target's own work (its CPU time less the cost).
  EXPECT_NEAR(e.overhead_percent, 100 * 0.0055 / (1.0 - 0.0055), 1e-9);
  EXPECT_EQ(g.stop_reason(), "");
}

TEST(OverheadGuard, StopsAboveTheBudgetAndSaysWhy) {
  OverheadGuard g(10, {5000, 0, "test"});
  OverheadReading r;
  r.entry_hits = 40000;  // 0.2 s of traps
  r.target_cpu_s = 1.0;  // 0.8 s of work: 25%
  g.update(r);
  EXPECT_NEAR(g.estimate().overhead_percent, 25.0, 1e-9);
  std::string why = g.stop_reason();
  EXPECT_NE(why.find("25.0%"), std::string::npos) << why;
  EXPECT_NE(why.find("budget of 10.0%"), std::string::npos) << why;
  EXPECT_NE(why.find("5000 ns entry"), std::string::npos) << why;
}

TEST(OverheadGuard, NoDecisionBeforeTheTargetUsedEnoughCpu) {
  OverheadGuard g(10, {5000, 0, "test"}, 0.05);
  OverheadReading r;
  r.entry_hits = 1000000;
  r.target_cpu_s = 0.01;
  g.update(r);
  EXPECT_EQ(g.estimate().overhead_percent, 0);
  EXPECT_EQ(g.stop_reason(), "");
}

TEST(OverheadGuard, CostAboveTheMeasuredCpuIsOverAnyBudget) {
  // The estimate can exceed the CPU time measured (the trap cost is an average): that is a
  // slowdown far above any budget, never a division by a negative number.
  OverheadGuard g(50, {5000, 0, "test"});
  OverheadReading r;
  r.entry_hits = 400000;  // 2 s of traps
  r.target_cpu_s = 1.0;
  g.update(r);
  EXPECT_GT(g.estimate().overhead_percent, 1000);
  EXPECT_NE(g.stop_reason(), "");
}

}  // namespace
}  // namespace leakwatch::analysis
