// Layer-1 collectors on this machine's real /proc: a child grows its memory by known amounts
// (tests/fixtures/agent_grower.c) and the deltas must show up in the right figures.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>

#include "agent_testing.h"
#include "metrics/proc_read.h"
#include "metrics/process_collector.h"
#include "metrics/system_collector.h"

namespace leakwatch::metrics {
namespace {

using leakwatch::testing::ChildProcess;
using leakwatch::testing::fixture;

constexpr double kMiB = 1024.0 * 1024.0;

double delta_mib(uint64_t before, uint64_t after) {
  return (static_cast<double>(after) - static_cast<double>(before)) / kMiB;
}

class CollectorOnChild : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(child_.pid(), 0);
    ASSERT_EQ(child_.read_line(), "ready");
  }
  ProcessSample sample() {
    auto s = collector_.collect(child_.pid());
    EXPECT_TRUE(s) << s.error().message;
    return s.value_or(ProcessSample{});
  }

  ChildProcess child_{{fixture("agent_grower"), "step"}};
  ProcessCollector collector_;
};

TEST_F(CollectorOnChild, AnonymousGrowthShowsInRssAnonPssUss) {
  ProcessSample before = sample();
  EXPECT_TRUE(before.detailed);
  EXPECT_FALSE(before.kernel_thread);
  EXPECT_EQ(before.comm, "agent_grower");
  ASSERT_EQ(child_.command("anon 64"), "ok");
  ProcessSample after = sample();
  // 64 MiB touched page by page; allow 2 MiB for stack, stdio and page-table noise.
  EXPECT_NEAR(delta_mib(before.anon, after.anon), 64.0, 2.0);
  EXPECT_NEAR(delta_mib(before.rss, after.rss), 64.0, 2.0);
  EXPECT_NEAR(delta_mib(before.uss, after.uss), 64.0, 2.0);
  EXPECT_NEAR(delta_mib(before.pss, after.pss), 64.0, 2.0);  // private pages count fully
  EXPECT_NEAR(delta_mib(before.vsz, after.vsz), 64.0, 2.0);
  EXPECT_NEAR(delta_mib(before.file, after.file), 0.0, 1.0);
  EXPECT_EQ(before.start_time_ticks, after.start_time_ticks);

  // One minor fault per 4 KiB page touched (no THP for a fresh 64 MiB mapping is not
  // guaranteed, so only a lower bound of 64 huge-page faults holds in general).
  EXPECT_GE(after.minflt - before.minflt, 32u);
  auto rates = rates_between(before, after);
  ASSERT_TRUE(rates.has_value());
  EXPECT_GT(rates->minflt_per_s, 0.0);
  EXPECT_GE(rates->majflt_per_s, 0.0);
}

TEST_F(CollectorOnChild, FileMappingShowsAsFileNotAnon) {
  ProcessSample before = sample();
  ASSERT_EQ(child_.command("file 32"), "ok");
  ProcessSample after = sample();
  EXPECT_NEAR(delta_mib(before.file + before.shmem, after.file + after.shmem), 32.0, 2.0);
  EXPECT_NEAR(delta_mib(before.anon, after.anon), 0.0, 1.0);
  EXPECT_NEAR(delta_mib(before.rss, after.rss), 32.0, 2.0);
}

TEST_F(CollectorOnChild, ReservedAddressSpaceGrowsVszOnly) {
  ProcessSample before = sample();
  ASSERT_EQ(child_.command("vsz 512"), "ok");
  ProcessSample after = sample();
  EXPECT_NEAR(delta_mib(before.vsz, after.vsz), 512.0, 1.0);
  EXPECT_NEAR(delta_mib(before.rss, after.rss), 0.0, 1.0);
}

TEST_F(CollectorOnChild, StatusOnlyModeSkipsSmaps) {
  ProcessCollector cheap("/proc", /*read_smaps=*/false);
  auto s = cheap.collect(child_.pid());
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_FALSE(s->detailed);
  EXPECT_GT(s->rss, 0u);
  EXPECT_EQ(s->pss, 0u);
}

TEST(MetricsCollector, RatesOnlyWithinOneInstance) {
  ProcessCollector c;
  auto a = c.collect(::getpid());
  ASSERT_TRUE(a) << a.error().message;
  ProcessSample later = *a;
  later.t_s += 2;
  later.minflt += 100;
  later.cpu_ticks += static_cast<uint64_t>(clock_ticks_per_second());  // 1 s of CPU in 2 s
  auto r = rates_between(*a, later);
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(r->minflt_per_s, 50.0);
  EXPECT_NEAR(r->cpu_percent, 50.0, 1e-9);
  ProcessSample restarted = later;
  restarted.start_time_ticks += 1;  // same pid, new process
  EXPECT_FALSE(rates_between(*a, restarted).has_value());
  EXPECT_FALSE(rates_between(later, *a).has_value());  // time going backwards
}

TEST(MetricsCollector, VanishedProcessIsReportedAsGone) {
  int pid;
  {
    ChildProcess child({fixture("agent_grower"), "step"});
    ASSERT_EQ(child.read_line(), "ready");
    pid = child.pid();
  }
  ProcessCollector c;
  auto s = c.collect(pid);
  ASSERT_FALSE(s);
  EXPECT_TRUE(is_gone(s.error())) << s.error().message;
}

TEST(MetricsCollector, KernelThreadHasNoMemory) {
  ProcessCollector c;
  auto s = c.collect(2);  // kthreadd
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->kernel_thread);
  EXPECT_EQ(s->rss, 0u);
}

TEST(MetricsCollector, FindsChildByCommAndListsPids) {
  ChildProcess child({fixture("agent_grower"), "step"});
  ASSERT_EQ(child.read_line(), "ready");
  auto pids = find_pids_by_comm("agent_grower");
  ASSERT_TRUE(pids) << pids.error().message;
  EXPECT_NE(std::find(pids->begin(), pids->end(), child.pid()), pids->end());
  // A configured name longer than the kernel's 15 characters matches on its prefix.
  auto self = find_pids_by_comm(std::string("agent_grower") + "_and_more_text");
  ASSERT_TRUE(self);
  EXPECT_TRUE(self->empty());  // "agent_grower_an" is not "agent_grower"
  auto all = list_pids();
  ASSERT_TRUE(all);
  EXPECT_NE(std::find(all->begin(), all->end(), ::getpid()), all->end());
}

TEST(MetricsCollector, SystemSample) {
  auto s = collect_system();
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_GT(s->meminfo.total, 0u);
  EXPECT_LE(s->meminfo.available, s->meminfo.total);
  EXPECT_GT(s->t_s, 0.0);
}

TEST(MetricsCollector, SelfUsage) {
  auto u = self_usage();
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_GT(u->rss_bytes, 1024u * 1024u);
  EXPECT_GE(u->cpu_seconds, 0.0);
}

TEST(MetricsCollector, CgroupWithoutMemoryControllerIsAClearError) {
  auto root = cgroup2_mount();
  if (!root) GTEST_SKIP() << "no cgroup2 mount: " << root.error().message;
  auto dir = process_cgroup_dir(::getpid(), *root);
  ASSERT_TRUE(dir) << dir.error().message;
  EXPECT_TRUE(dir->starts_with(*root));
  // The root cgroup never has memory.current; on this hybrid host no v2 cgroup has it.
  auto s = collect_cgroup(*root, *root);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("memory.current"), std::string::npos) << s.error().message;
  auto missing = collect_cgroup(*root + "/no-such-cgroup", *root);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(is_gone(missing.error()));
  auto pids = cgroup_pids(*root);
  ASSERT_TRUE(pids) << pids.error().message;
}

}  // namespace
}  // namespace leakwatch::metrics
