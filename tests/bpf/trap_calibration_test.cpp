// The trap calibration on this machine's kernel: real uprobes on leakwatch's own functions.
// Only sanity is asserted (positive, finite, a plausible order): the figures themselves
// belong to bench/overhead_estimate.sh and BENCHMARKS.md.
#include <gtest/gtest.h>

#include <cmath>

#include "probe/trap_calibration.h"
#include "support/process.h"

namespace leakwatch::probe {
namespace {

TEST(TrapCalibrationBpf, MeasuresPositiveFiniteCostsInAPlausibleOrder) {
  if (!testing::have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  auto c = calibrate_traps({5, 300});
  ASSERT_TRUE(c) << c.error().message;
  SCOPED_TRACE(c->summary());
  for (double v : {c->entry_ns, c->return_ns, c->nop5_ns, c->single_step_ns, c->plain_ns})
    EXPECT_TRUE(std::isfinite(v));
  EXPECT_GT(c->entry_ns, 0);
  EXPECT_GT(c->return_ns, 0);
  EXPECT_GT(c->single_step_ns, 0);
  EXPECT_GE(c->nop5_ns, 0);
  // A trap is a kernel entry and exit: far more than the unprobed call, and less than a
  // millisecond on anything that runs BPF.
  EXPECT_GT(c->entry_ns, 10 * c->plain_ns);
  EXPECT_LT(c->entry_ns, 1e6);
  // The BPF part was measured apart (bpf_stats) and is a small fraction of the trap.
  EXPECT_TRUE(c->bpf_stats);
  EXPECT_GT(c->bpf_entry_ns, 0);
  EXPECT_LT(c->bpf_entry_ns, c->entry_ns);
  EXPECT_EQ(c->rounds, 5u);
  EXPECT_EQ(c->host, current_host());
}

TEST(TrapCalibrationBpf, TheCacheMeasuresOnce) {
  if (!testing::have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  TrapCalibrationCache cache([] { return calibrate_traps({3, 100}); }, current_host);
  auto a = cache.get();
  ASSERT_TRUE(a) << a.error().message;
  auto b = cache.get();
  ASSERT_TRUE(b);
  EXPECT_EQ(cache.measurements(), 1);
  EXPECT_EQ(a->entry_ns, b->entry_ns);
}

}  // namespace
}  // namespace leakwatch::probe
