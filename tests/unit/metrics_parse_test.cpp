// Layer-1 parsers on copies of real /proc and cgroup files (tests/data/proc, see its README).
#include <gtest/gtest.h>

#include <string>

#include "common/atomic_file.h"
#include "metrics/proc_parse.h"

namespace leakwatch::metrics {
namespace {

std::string data(const std::string& name) {
  auto text = read_file(std::string(LEAKWATCH_TEST_DATA) + "/proc/" + name);
  EXPECT_TRUE(text.has_value()) << name;
  return text.value_or("");
}

constexpr uint64_t kKiB = 1024;

TEST(MetricsParse, SmapsRollupOfPythonHolding64MiB) {
  auto r = parse_smaps_rollup(data("smaps_rollup_python64m"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->rss, 79132 * kKiB);
  EXPECT_EQ(r->pss, 77216 * kKiB);
  EXPECT_EQ(r->pss_anon, 72416 * kKiB);
  EXPECT_EQ(r->pss_file, 4800 * kKiB);
  EXPECT_EQ(r->private_clean, 4552 * kKiB);
  EXPECT_EQ(r->private_dirty, 72416 * kKiB);
  EXPECT_EQ(r->uss(), (4552 + 72416) * kKiB);
  EXPECT_EQ(r->anonymous, 72416 * kKiB);
  EXPECT_EQ(r->swap, 0u);
  // The 64 MiB bytearray is in there, as anonymous memory.
  EXPECT_GE(r->anonymous, 64 * kKiB * kKiB);
}

TEST(MetricsParse, SmapsRollupOfSmallProcess) {
  auto r = parse_smaps_rollup(data("smaps_rollup_sleep"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GT(r->rss, 0u);
  EXPECT_LE(r->pss, r->rss);
  EXPECT_LE(r->uss(), r->pss);
}

TEST(MetricsParse, SmapsRollupRejectsEmptyText) {
  // What reading a kernel thread's smaps_rollup yields: nothing.
  auto r = parse_smaps_rollup("");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Rss"), std::string::npos);
}

TEST(MetricsParse, StatusOfPython) {
  auto s = parse_proc_status(data("status_python64m"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->name, "python3");
  EXPECT_TRUE(s->has_mm);
  EXPECT_EQ(s->vm_size, 82108 * kKiB);
  EXPECT_EQ(s->vm_rss, 79132 * kKiB);
  EXPECT_EQ(s->rss_anon, 72416 * kKiB);
  EXPECT_EQ(s->rss_file, 6716 * kKiB);
  EXPECT_EQ(s->rss_shmem, 0u);
  EXPECT_EQ(s->vm_swap, 0u);
  EXPECT_EQ(s->threads, 1);
  EXPECT_EQ(s->vm_rss, s->rss_anon + s->rss_file + s->rss_shmem);
}

TEST(MetricsParse, StatusOfKernelThreadHasNoMm) {
  auto s = parse_proc_status(data("status_kthread"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->name, "kthreadd");
  EXPECT_FALSE(s->has_mm);
  EXPECT_EQ(s->vm_rss, 0u);
}

TEST(MetricsParse, StatWithParenthesesAndSpacesInComm) {
  auto s = parse_proc_stat(data("stat_paren_comm"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->pid, 8452);
  EXPECT_EQ(s->comm, "a (b) c");
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->ppid, 8448);
  EXPECT_EQ(s->minflt, 100u);
  EXPECT_EQ(s->majflt, 0u);
  EXPECT_EQ(s->num_threads, 1);
  EXPECT_EQ(s->start_time_ticks, 68430u);
  EXPECT_EQ(s->vsize, 2990080u);
  EXPECT_EQ(s->rss_pages, 410u);
}

TEST(MetricsParse, StatOfPythonAndKernelThread) {
  auto py = parse_proc_stat(data("stat_python64m"));
  ASSERT_TRUE(py) << py.error().message;
  EXPECT_EQ(py->comm, "python3");
  EXPECT_EQ(py->vsize, 82108 * kKiB);          // agrees with status's VmSize
  // stat's rss (19738 pages) and status's VmRSS were read moments apart: within 1%.
  EXPECT_NEAR(static_cast<double>(py->rss_pages * 4096), 79132.0 * kKiB, 0.01 * 79132 * kKiB);
  EXPECT_GT(py->minflt, 16384u);                // at least one fault per 4 KiB page touched

  auto kt = parse_proc_stat(data("stat_kthread"));
  ASSERT_TRUE(kt) << kt.error().message;
  EXPECT_EQ(kt->pid, 2);
  EXPECT_EQ(kt->comm, "kthreadd");
  EXPECT_EQ(kt->vsize, 0u);
}

TEST(MetricsParse, StatRejectsTruncatedText) {
  EXPECT_FALSE(parse_proc_stat("123 (x) S 1 2 3"));
  EXPECT_FALSE(parse_proc_stat("no comm here"));
}

TEST(MetricsParse, Meminfo) {
  auto m = parse_meminfo(data("meminfo"));
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->total, 24683620 * kKiB);
  EXPECT_GT(m->available, 0u);
  EXPECT_LE(m->available, m->total);
  EXPECT_LE(m->free, m->total);
  EXPECT_FALSE(parse_meminfo("MemFree: 1 kB\n"));
}

TEST(MetricsParse, PressureOfIdleSystem) {
  auto p = parse_psi(data("pressure_memory"));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->some.avg10, 0.0);
  EXPECT_EQ(p->some.total_us, 0u);
  ASSERT_TRUE(p->full.has_value());
  auto c = parse_psi(data("cgroup_v2/memory.pressure_idle_real"));
  ASSERT_TRUE(c) << c.error().message;
}

TEST(MetricsParse, PressureUnderStall) {
  auto p = parse_psi(data("cgroup_v2/memory.pressure"));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_DOUBLE_EQ(p->some.avg10, 12.41);
  EXPECT_DOUBLE_EQ(p->some.avg60, 5.07);
  EXPECT_DOUBLE_EQ(p->some.avg300, 1.19);
  EXPECT_EQ(p->some.total_us, 4719321u);
  ASSERT_TRUE(p->full.has_value());
  EXPECT_DOUBLE_EQ(p->full->avg10, 9.86);
  EXPECT_EQ(p->full->total_us, 3655873u);
  // "full" can never exceed "some".
  EXPECT_LE(p->full->total_us, p->some.total_us);
}

TEST(MetricsParse, PressureRejectsGarbage) {
  EXPECT_FALSE(parse_psi("some avg10=x avg60=0 avg300=0 total=0\n"));
  EXPECT_FALSE(parse_psi("bogus line\n"));
  EXPECT_FALSE(parse_psi("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"));  // no some
}

TEST(MetricsParse, CgroupMemoryStat) {
  auto s = parse_cgroup_memory_stat(data("cgroup_v2/memory.stat"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->anon, 322961408u);
  EXPECT_EQ(s->file, 71380992u);
  EXPECT_EQ(s->kernel, 14188544u);
  EXPECT_EQ(s->shmem, 131072u);
  EXPECT_EQ(s->sock, 12288u);
  EXPECT_FALSE(parse_cgroup_memory_stat("anon 1\n"));
  EXPECT_FALSE(parse_cgroup_memory_stat("anon x\nfile 1\n"));
}

TEST(MetricsParse, CgroupMemoryEventsAfterOomKill) {
  auto e = parse_cgroup_memory_events(data("cgroup_v2/memory.events"));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->max, 35u);
  EXPECT_EQ(e->oom, 1u);
  EXPECT_EQ(e->oom_kill, 1u);
  EXPECT_EQ(e->oom_group_kill, 0u);
}

TEST(MetricsParse, CgroupLimitAndCurrent) {
  auto lim = parse_cgroup_limit(data("cgroup_v2/memory.max"));
  ASSERT_TRUE(lim);
  ASSERT_TRUE(lim->has_value());
  EXPECT_EQ(**lim, 512u * 1024 * 1024);
  auto unlimited = parse_cgroup_limit(data("cgroup_v2/memory.max_unlimited"));
  ASSERT_TRUE(unlimited);
  EXPECT_FALSE(unlimited->has_value());
  EXPECT_FALSE(parse_cgroup_limit("lots\n"));
  auto cur = parse_u64_file(data("cgroup_v2/memory.current"));
  ASSERT_TRUE(cur);
  EXPECT_EQ(*cur, 412876800u);
}

TEST(MetricsParse, CgroupV2PathOnHybridAndUnifiedHosts) {
  auto hybrid = parse_cgroup_v2_path(data("proc_cgroup_hybrid"));
  ASSERT_TRUE(hybrid) << hybrid.error().message;
  EXPECT_EQ(*hybrid, "/");
  auto unified = parse_cgroup_v2_path("0::/system.slice/myservice.service\n");
  ASSERT_TRUE(unified);
  EXPECT_EQ(*unified, "/system.slice/myservice.service");
  EXPECT_FALSE(parse_cgroup_v2_path("4:memory:/x\n"));
}

TEST(MetricsParse, Cgroup2MountPoint) {
  auto m = find_cgroup2_mount(data("mountinfo_hybrid"));
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(*m, "/sys/fs/cgroup/unified");
  auto unified = find_cgroup2_mount(
      "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n");
  ASSERT_TRUE(unified);
  EXPECT_EQ(*unified, "/sys/fs/cgroup");
  auto escaped = find_cgroup2_mount("1 2 0:3 / /mnt/cg\\0402 rw - cgroup2 none rw\n");
  ASSERT_TRUE(escaped);
  EXPECT_EQ(*escaped, "/mnt/cg 2");
  EXPECT_FALSE(find_cgroup2_mount("1 2 0:3 / /proc rw - proc proc rw\n"));
}

}  // namespace
}  // namespace leakwatch::metrics
