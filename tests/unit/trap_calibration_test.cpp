// The trap calibration's statistics and its cache (probe/trap_calibration.h); the
// measurement itself is in tests/bpf/trap_calibration_test.cpp.
#include <gtest/gtest.h>

#include "probe/trap_calibration.h"

namespace leakwatch::probe {
namespace {

TEST(TrapCalibrationStats, Median) {
  EXPECT_EQ(median({}), 0);
  EXPECT_EQ(median({7}), 7);
  EXPECT_EQ(median({9, 1, 5}), 5);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  // One preempted round does not move it.
  EXPECT_EQ(median({5000, 5100, 4900, 250000, 5050}), 5050);
}

TEST(TrapCalibrationStats, TrapCostsAreMedianDifferencesLessTheBpfPart) {
  TrapRounds r;
  r.plain = {2, 2, 3, 2, 2};
  // entry: +5000 except a round disturbed by another process
  r.entry = {5002, 5002, 5003, 90000, 5002};
  // return: +3000 on top of the entry
  r.entry_return = {8002, 8002, 8003, 8002, 8002};
  r.nop5 = {1802, 1802, 1803, 1802, 1802};
  r.single_step = {9002, 9002, 9003, 9002, 9002};
  r.bpf_entry_ns = 40;
  r.bpf_return_ns = 30;
  r.bpf_stats = true;
  r.calls_per_round = 500;
  TrapCalibration c = summarize_trap_rounds(r);
  EXPECT_DOUBLE_EQ(c.plain_ns, 2);
  EXPECT_DOUBLE_EQ(c.entry_ns, 5000 - 40);
  // Per-round differences: the disturbed round's entry makes its return difference
  // negative, and the median ignores both.
  EXPECT_DOUBLE_EQ(c.return_ns, 3000 - 30);
  EXPECT_DOUBLE_EQ(c.nop5_ns, 1800 - 40);
  EXPECT_DOUBLE_EQ(c.single_step_ns, 9000 - 40);
  EXPECT_EQ(c.rounds, 5u);
  EXPECT_EQ(c.calls_per_round, 500u);
  std::string s = c.summary();
  EXPECT_NE(s.find("entry 4960 ns, return 2970 ns"), std::string::npos) << s;
  EXPECT_NE(s.find("median of 5 rounds of 500 calls"), std::string::npos) << s;
}

TEST(TrapCalibrationStats, NeverNegativeAndZeroWithoutRounds) {
  TrapRounds r;
  r.plain = {10, 10, 10};
  r.entry = {12, 12, 12};   // less than the BPF part: noise, not a negative cost
  r.bpf_entry_ns = 40;
  TrapCalibration c = summarize_trap_rounds(r);
  EXPECT_EQ(c.entry_ns, 0);
  EXPECT_EQ(c.return_ns, 0);  // no entry_return rounds
  EXPECT_EQ(c.nop5_ns, 0);
  EXPECT_EQ(c.rounds, 0u);
}

struct FakeHost {
  HostKey key{"6.18.0", "CPU A"};
  int measured = 0;
  TrapCalibrationCache cache{[this]() -> Result<TrapCalibration> {
                               TrapCalibration c;
                               c.entry_ns = 1000.0 * ++measured;
                               return c;
                             },
                             [this] { return key; }};
};

TEST(TrapCalibrationCacheTest, MeasuresOnceForTheSameHost) {
  FakeHost h;
  auto a = h.cache.get();
  auto b = h.cache.get();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(h.measured, 1);
  EXPECT_EQ(h.cache.measurements(), 1);
  EXPECT_EQ(b->entry_ns, 1000);
  EXPECT_EQ(b->host, (HostKey{"6.18.0", "CPU A"}));
}

TEST(TrapCalibrationCacheTest, MeasuresAgainWhenTheKernelOrCpuChanges) {
  FakeHost h;
  ASSERT_TRUE(h.cache.get());
  h.key.kernel_release = "6.19.0";
  auto after_kernel = h.cache.get();
  ASSERT_TRUE(after_kernel);
  EXPECT_EQ(after_kernel->entry_ns, 2000);
  h.key.cpu_model = "CPU B";  // a VM migrated to another host model
  auto after_cpu = h.cache.get();
  ASSERT_TRUE(after_cpu);
  EXPECT_EQ(after_cpu->entry_ns, 3000);
  EXPECT_EQ(after_cpu->host.cpu_model, "CPU B");
  EXPECT_EQ(h.cache.get()->entry_ns, 3000);
  EXPECT_EQ(h.measured, 3);
}

TEST(TrapCalibrationCacheTest, AFailedMeasurementIsNotCached) {
  int calls = 0;
  TrapCalibrationCache cache(
      [&]() -> Result<TrapCalibration> {
        if (++calls == 1) return fail("no BPF permission");
        return TrapCalibration{};
      },
      [] { return HostKey{"r", "c"}; });
  auto first = cache.get();
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().message, "no BPF permission");
  EXPECT_TRUE(cache.get());
  EXPECT_TRUE(cache.get());
  EXPECT_EQ(calls, 2);
}

TEST(TrapCalibrationHost, NamesTheKernelAndCpu) {
  HostKey k = current_host();
  EXPECT_FALSE(k.kernel_release.empty());
  // Every x86 /proc/cpuinfo has a model name; other architectures may not.
#if defined(__x86_64__)
  EXPECT_FALSE(k.cpu_model.empty());
#endif
}

}  // namespace
}  // namespace leakwatch::probe
