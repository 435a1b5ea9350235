// The overhead guard's estimate and stop decision (analysis/overhead_guard.h).
#include <fmt/format.h>
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

// The early decision: an allocation-heavy target traced with a slow trap, read after the
// first 0.3 s (the agent's guard window is 0.25 s).
GuardOptions early_options(double budget) {
  GuardOptions o;
  o.budget_percent = budget;
  o.min_cpu_s = 0.05;
  o.min_elapsed_s = 0.25;
  o.planned_s = 300;
  return o;
}

TEST(OverheadGuardPrediction, EarlyReadingOverBudgetStopsWithTheFigures) {
  OverheadGuard g(early_options(10), {5000, 2000, "measured at start: entry 5000 ns, return 2000 ns"});
  OverheadReading r;
  r.elapsed_s = 0.3;
  r.entry_hits = 50000;     // 0.25 s of traps
  r.return_hits = 50;       // sampled returns
  r.bpf_run_ns = 5000000;   // 5 ms
  r.target_cpu_s = 0.3;     // the target ran all the time: 0.045 s of its own work
  const OverheadEstimate& e = g.update(r);
  EXPECT_TRUE(e.decided);
  const double cost = (50000 * 5000.0 + 50 * 2000.0) / 1e9 + 0.005;
  EXPECT_NEAR(e.overhead_percent, 100 * cost / (0.3 - cost), 1e-6);
  EXPECT_NEAR(e.hits_per_s, 50050 / 0.3, 1e-6);
  EXPECT_NEAR(e.cost_per_s, cost / 0.3, 1e-9);
  // Over 300 s at that rate: the prediction the reason carries.
  EXPECT_NEAR(g.predicted_cost_s(), cost / 0.3 * 300, 1e-6);
  std::string why = g.stop_reason();
  ASSERT_FALSE(why.empty());
  EXPECT_NE(why.find(fmt::format("{:.1f}%", e.overhead_percent)), std::string::npos) << why;
  EXPECT_NE(why.find("budget of 10.0%"), std::string::npos) << why;
  EXPECT_NE(why.find("after 0.3 s"), std::string::npos) << why;
  EXPECT_NE(why.find("measured at start: entry 5000 ns"), std::string::npos) << why;
  EXPECT_NE(why.find(fmt::format("{:.1f} s of CPU", cost / 0.3 * 300)), std::string::npos) << why;
  // The probes take most of its CPU: the share, and the overhead's lower bound with the
  // trap cost taken 30% lower.
  EXPECT_NEAR(e.probe_share, cost / 0.3, 1e-9);
  const double low = cost * (1 - kTrapCostTolerance);
  EXPECT_NEAR(e.overhead_lower_percent, 100 * low / (0.3 - low), 1e-6);
  EXPECT_NE(why.find(fmt::format("probes cost {:.3f} s of its 0.300 s of CPU", cost)),
            std::string::npos) << why;
  EXPECT_NE(why.find(fmt::format("take {:.0f}% of its CPU", 100 * cost / 0.3)), std::string::npos)
      << why;
  EXPECT_NE(why.find(fmt::format("at least {:.0f}%", e.overhead_lower_percent)), std::string::npos)
      << why;
}

TEST(OverheadGuardPrediction, EarlyReadingUnderBudgetContinues) {
  OverheadGuard g(early_options(10), {5000, 2000, "test"});
  OverheadReading r;
  r.elapsed_s = 0.3;
  r.entry_hits = 2000;       // 10 ms of traps against 0.3 s of CPU: 3.4%
  r.target_cpu_s = 0.3;
  const OverheadEstimate& e = g.update(r);
  EXPECT_TRUE(e.decided);
  EXPECT_NEAR(e.overhead_percent, 100 * 0.01 / 0.29, 1e-9);
  EXPECT_EQ(g.stop_reason(), "");
  // The description is there all the same (the investigation's note), with no lower bound
  // while the probes take a small share of the CPU.
  EXPECT_NE(g.describe().find("3.4%"), std::string::npos) << g.describe();
  EXPECT_EQ(g.describe().find("at least"), std::string::npos) << g.describe();
}

TEST(OverheadGuardPrediction, NoDecisionBeforeTheWindowOrEnoughCpu) {
  OverheadGuard g(early_options(10), {5000, 0, "test"});
  OverheadReading r;
  r.entry_hits = 50000;  // far over any budget...
  r.target_cpu_s = 0.3;
  r.elapsed_s = 0.1;     // ...but before the window ends
  EXPECT_FALSE(g.update(r).decided);
  EXPECT_EQ(g.stop_reason(), "");
  r.elapsed_s = 2;       // the window is over, but the target has hardly run
  r.target_cpu_s = 0.02;
  EXPECT_FALSE(g.update(r).decided);
  EXPECT_EQ(g.stop_reason(), "");
  r.target_cpu_s = 0.3;  // both: now it decides
  EXPECT_TRUE(g.update(r).decided);
  EXPECT_NE(g.stop_reason(), "");
}

// The sampled split (probe/cost_sampler.h), once it has enough samples, is the overhead:
// samples at the probes over samples of the target's own work.  The estimate stays beside it.
TEST(OverheadGuard, MeasuredSplitReplacesTheEstimate) {
  OverheadGuard g(10, {5000, 1000, "test"});
  OverheadReading r;
  r.entry_hits = 100000;
  r.target_cpu_s = 1.0;
  r.sampled = true;
  r.samples_at_probes = 950;
  r.samples_work = 50;
  const OverheadEstimate& e = g.update(r);
  EXPECT_TRUE(e.measured);
  EXPECT_DOUBLE_EQ(e.overhead_percent, 1900.0);
  EXPECT_NEAR(e.estimated_percent, 100 * 0.5 / 0.5, 1e-9);  // 0.5 s of traps in 1 s of CPU
  const std::string why = g.stop_reason();
  EXPECT_NE(why.find("measured overhead 1900.0%"), std::string::npos) << why;
  EXPECT_NE(why.find("950 of its 1000 CPU samples"), std::string::npos) << why;
  EXPECT_NE(why.find("100.0%"), std::string::npos) << "the estimate beside it: " << why;
}

TEST(OverheadGuard, TooFewSamplesKeepTheEstimate) {
  OverheadGuard g(10, {5000, 0, "test"});
  OverheadReading r;
  r.entry_hits = 40000;  // 0.2 s of traps in 1 s of CPU: 25%
  r.target_cpu_s = 1.0;
  r.sampled = true;
  r.samples_at_probes = kMinCostSamples / 2;
  r.samples_work = kMinCostSamples / 2 - 1;
  const OverheadEstimate& e = g.update(r);
  EXPECT_FALSE(e.measured);
  EXPECT_NEAR(e.overhead_percent, 25.0, 1e-9);
}

TEST(OverheadGuard, NoWorkSampleIsALowerBound) {
  OverheadGuard g(10, {5000, 0, "test"});
  OverheadReading r;
  r.target_cpu_s = 0.2;
  r.sampled = true;
  r.samples_at_probes = 200;
  r.samples_work = 0;
  const OverheadEstimate& e = g.update(r);
  EXPECT_TRUE(e.measured);
  EXPECT_DOUBLE_EQ(e.overhead_percent, 20000.0);  // as if one sample had been work
  EXPECT_NE(g.describe().find("at least"), std::string::npos) << g.describe();
  EXPECT_NE(g.stop_reason(), "");
}

TEST(OverheadGuard, WhyTheSplitIsMissingIsSaid) {
  OverheadGuard g(10, {5000, 0, "test"});
  OverheadReading r;
  r.entry_hits = 1000;
  r.target_cpu_s = 1.0;
  r.sampling_error = "cost sampling: no CPU clock event";
  g.update(r);
  EXPECT_NE(g.describe().find("not measured: cost sampling: no CPU clock event"), std::string::npos)
      << g.describe();
}

// Probes taking most of the CPU leave the allocator's code cold: with a baseline (the
// allocator's share of the untraced target), the work is the samples elsewhere scaled up,
// and the allocator's surplus is the probes'.
TEST(OverheadGuard, BaselineCorrectsTheWorkWhereTheProbesDominate) {
  OverheadGuard g(10, {5000, 0, "test"});
  OverheadReading r;
  r.target_cpu_s = 1.0;
  r.sampled = true;
  r.samples_at_probes = 900;
  r.samples_work = 100;            // 60 of them in the allocator's objects
  r.samples_work_elsewhere = 40;
  r.baseline_allocator_share = 0.2;  // untraced: the work elsewhere is 80% of it
  const OverheadEstimate& e = g.update(r);
  EXPECT_TRUE(e.baseline_corrected);
  EXPECT_DOUBLE_EQ(e.work_samples_estimated, 50.0);
  EXPECT_DOUBLE_EQ(e.overhead_percent, 100.0 * (1000 - 50) / 50);
  EXPECT_NE(g.describe().find("allocator took 20%"), std::string::npos) << g.describe();
}

TEST(OverheadGuard, NoBaselineCorrectionAtLowOverheadOrAnAllocatorBoundTarget) {
  OverheadReading r;
  r.target_cpu_s = 1.0;
  r.sampled = true;
  r.samples_at_probes = 50;
  r.samples_work = 950;
  r.samples_work_elsewhere = 100;
  r.baseline_allocator_share = 0.5;
  OverheadGuard low(10, {5000, 0, "test"});
  EXPECT_FALSE(low.update(r).baseline_corrected);  // 5.3%: the sampled split stands
  EXPECT_NEAR(low.estimate().overhead_percent, 100.0 * 50 / 950, 1e-9);
  r.samples_at_probes = 900;
  r.samples_work = 100;
  r.samples_work_elsewhere = 5;
  r.baseline_allocator_share = 0.9;  // the work elsewhere too small a part to scale
  OverheadGuard bound(10, {5000, 0, "test"});
  EXPECT_FALSE(bound.update(r).baseline_corrected);
  EXPECT_DOUBLE_EQ(bound.estimate().overhead_percent, 900.0);
}

}  // namespace
}  // namespace leakwatch::analysis
