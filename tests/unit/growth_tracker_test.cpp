// GrowthTracker on recorded event sequences: fault classification by region, estimates of
// sampled faults, mapped bytes by stack, and the report's order and totals.
#include <gtest/gtest.h>

#include <cmath>

#include "tracker/growth_tracker.h"
#include "tracker_testing.h"

namespace leakwatch::tracker {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint32_t kPid = 4242;
constexpr uint32_t kWrite = 2;  // page fault error code: write access

using testing::NamingResolver;

lw_gr_event fault(uint64_t addr, uint64_t stack, uint32_t error_code = kWrite,
                  uint32_t pid = kPid) {
  lw_gr_event e{};
  e.type = LW_GR_EV_FAULT;
  e.tgid = pid;
  e.addr = addr;
  e.stack = stack;
  e.flags = error_code;
  return e;
}

lw_gr_event mmap_ev(uint64_t addr, uint64_t len, uint64_t stack, bool file = false) {
  lw_gr_event e{};
  e.type = LW_GR_EV_MMAP;
  e.tgid = kPid;
  e.addr = addr;
  e.len = len;
  e.stack = stack;
  e.prot = 3;
  e.flags = file ? 0x02 : 0x22;  // MAP_PRIVATE [| MAP_ANONYMOUS]
  e.fd = file ? 3 : -1;
  return e;
}

lw_gr_event lifetime(uint32_t type) {
  lw_gr_event e{};
  e.type = type;
  e.tgid = kPid;
  return e;
}

GrowthSnapshot snapshot(uint64_t faults, uint64_t sampled) {
  GrowthSnapshot snap;
  snap.counters[LW_GR_CNT_FAULTS] = faults;
  snap.counters[LW_GR_CNT_SAMPLED] = sampled;
  snap.read_stack = [](uint64_t stack) { return std::vector<uint64_t>{stack}; };
  return snap;
}

const report::GrowthStack* stack_named(const report::GrowthReport& r, const std::string& fn) {
  for (const auto& s : r.stacks)
    if (!s.frames.empty() && s.frames[0].function == fn) return &s;
  return nullptr;
}

GrowthTrackerConfig config(uint32_t period = 1) {
  GrowthTrackerConfig c;
  c.target.pid = static_cast<int>(kPid);
  c.sample_period = period;
  c.page_size = kPage;
  // Before attach the process had a heap, a stack and a read-only mapped library.
  c.read_maps = [](uint32_t) -> Result<std::vector<MapEntry>> {
    return parse_proc_maps(
        "05000000-05100000 rw-p 00000000 00:00 0 [heap]\n"
        "07000000-07100000 r--p 00000000 08:01 99 /usr/lib/libfoo.so\n"
        "07100000-07200000 rw-s 00000000 00:05 99 /dev/shm/segment\n"
        "07ff0000-08000000 rw-p 00000000 00:00 0 [stack]\n");
  };
  return c;
}

TEST(GrowthTracker, FaultsAreClassifiedByTheRegionTheyHit) {
  NamingResolver resolver;
  GrowthTracker t(config(), resolver);
  t.on_event(mmap_ev(0x100000, 16 * kPage, 1));               // anonymous, stack 1
  t.on_event(mmap_ev(0x200000, 16 * kPage, 2, /*file*/ true));  // file, stack 2
  for (int i = 0; i < 10; i++) t.on_event(fault(0x100000 + i * kPage, 10));  // anon
  for (int i = 0; i < 4; i++) t.on_event(fault(0x200000 + i * kPage, 20, 0));  // file read
  for (int i = 0; i < 3; i++) t.on_event(fault(0x200000 + i * kPage, 21));  // private write
  t.on_event(fault(0x5000000 + 5 * kPage, 30));   // [heap] from /proc maps
  t.on_event(fault(0x7000000, 31, 0));            // library read
  t.on_event(fault(0x7100000, 32));               // shared file write: stays file
  t.on_event(fault(0x7ff8000, 33));               // [stack]
  t.on_event(fault(0x9000000, 34));               // nowhere: unknown

  auto r = t.update(snapshot(22, 22), 1.0);
  auto anon = [&](const std::string& fn) { return stack_named(r, fn)->faulted_bytes.estimate; };
  auto file = [&](const std::string& fn) {
    return stack_named(r, fn)->file_faulted_bytes.estimate;
  };
  EXPECT_EQ(anon("fn10"), 10 * kPage);
  EXPECT_EQ(file("fn20"), 4 * kPage);
  EXPECT_EQ(anon("fn20"), 0);
  EXPECT_EQ(anon("fn21"), 3 * kPage);  // copy-on-write of a file page is anonymous memory
  EXPECT_EQ(anon("fn30"), kPage);
  EXPECT_EQ(file("fn31"), kPage);
  EXPECT_EQ(file("fn32"), kPage);
  EXPECT_EQ(anon("fn33"), kPage);
  EXPECT_EQ(anon("fn34"), kPage);      // unknown counts with the anonymous faults
  EXPECT_EQ(r.totals.faults, 22u);
  EXPECT_FALSE(r.totals.classes_estimated);
  EXPECT_EQ(r.totals.anon_faults, 15);
  EXPECT_EQ(r.totals.file_faults, 6);
  EXPECT_EQ(r.totals.unknown_faults, 1);
  // Mapped bytes: the anonymous mapping by stack 1, the file mapping by stack 2.
  EXPECT_EQ(stack_named(r, "fn1")->mapped_bytes, 16 * kPage);
  EXPECT_EQ(stack_named(r, "fn1")->mapped_regions, 1u);
  EXPECT_EQ(stack_named(r, "fn2")->mapped_bytes, 0);
  EXPECT_EQ(stack_named(r, "fn2")->file_mapped_bytes, 16 * kPage);
  EXPECT_EQ(r.totals.mapped_bytes, 16 * kPage);
  EXPECT_EQ(r.totals.file_mapped_bytes, 16 * kPage);
  // Largest growth first: stack 1 (16 pages mapped), then stack 10 (10 pages faulted).
  ASSERT_GE(r.stacks.size(), 2u);
  EXPECT_EQ(r.stacks[0].frames[0].function, "fn1");
  EXPECT_EQ(r.stacks[1].frames[0].function, "fn10");
  for (size_t i = 1; i < r.stacks.size(); i++)
    EXPECT_GE(r.stacks[i - 1].growth_bytes, r.stacks[i].growth_bytes);
}

TEST(GrowthTracker, SampledFaultsAreScaledWithAnInterval) {
  NamingResolver resolver;
  GrowthTracker t(config(16), resolver);
  t.on_event(mmap_ev(0x100000, 4096 * kPage, 1));
  for (int i = 0; i < 100; i++) t.on_event(fault(0x100000 + i * kPage, 10));
  auto r = t.update(snapshot(1620, 100), 2.0);
  const auto* s = stack_named(r, "fn10");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->faults.sampled, 100);
  EXPECT_EQ(s->faults.estimate, 1600);
  EXPECT_EQ(s->faulted_bytes.estimate, 1600.0 * kPage);
  // 1.96 * sqrt(k (1 - p)) / p = 1.96 * sqrt(100 * 15/16) * 16
  double half = 1.96 * std::sqrt(100 * 15.0 / 16.0) * 16;
  EXPECT_NEAR(s->faults.ci_lo, 1600 - half, 1e-6);
  EXPECT_NEAR(s->faults.ci_hi, 1600 + half, 1e-6);
  EXPECT_TRUE(r.totals.classes_estimated);
  EXPECT_EQ(r.totals.anon_faults, 1620);  // the sampled split scaled to every fault
  EXPECT_EQ(r.sample_period, 16u);
  ASSERT_FALSE(r.notes.empty());
}

TEST(GrowthTracker, SampledCountEstimate) {
  auto e = sampled_count_estimate(0, 0.5, 4096);
  EXPECT_EQ(e.estimate, 0);
  e = sampled_count_estimate(10, 1.0, 4096);
  EXPECT_EQ(e.estimate, 40960);
  EXPECT_EQ(e.ci_lo, 40960);
  EXPECT_EQ(e.ci_hi, 40960);
  e = sampled_count_estimate(1, 0.01, 1);  // the interval never goes below what was seen
  EXPECT_EQ(e.estimate, 100);
  EXPECT_EQ(e.ci_lo, 1);
}

TEST(GrowthTracker, ExecForgetsTheOldAddressSpace) {
  NamingResolver resolver;
  GrowthTracker t(config(), resolver);
  t.on_event(mmap_ev(0x100000, 16 * kPage, 1));
  t.on_event(lifetime(LW_GR_EV_EXEC));
  auto r = t.update(snapshot(0, 0), 1.0);
  EXPECT_EQ(r.totals.mapped_bytes, 0);
  EXPECT_EQ(stack_named(r, "fn1"), nullptr);
}

TEST(GrowthTracker, ExitKeepsOrDropsTheRegions) {
  for (bool keep : {true, false}) {
    NamingResolver resolver;
    auto c = config();
    c.keep_exited = keep;
    GrowthTracker t(c, resolver);
    t.on_event(mmap_ev(0x100000, 16 * kPage, 1));
    t.on_event(lifetime(LW_GR_EV_EXIT));
    auto r = t.update(snapshot(0, 0), 1.0);
    EXPECT_EQ(r.totals.mapped_bytes, keep ? 16 * kPage : 0) << keep;
  }
}

TEST(GrowthTracker, LostStacksAndLossCounters) {
  NamingResolver resolver;
  GrowthTracker t(config(), resolver);
  t.on_event(fault(0x5000000, LW_GR_NO_STACK));
  auto snap = snapshot(1, 1);
  snap.counters[LW_GR_CNT_EVENTS_LOST] = 3;
  snap.counters[LW_GR_CNT_STACK_LOST] = 1;
  auto r = t.update(snap, 1.0);
  ASSERT_EQ(r.stacks.size(), 1u);
  EXPECT_EQ(r.stacks[0].frames[0].function, "[lost stack]");
  EXPECT_EQ(r.lost.at("events_lost"), 3u);
  EXPECT_EQ(r.lost.at("stack_lost"), 1u);
  EXPECT_EQ(r.lost.at("syscall_state_full"), 0u);
  EXPECT_TRUE(r.totals.classes_estimated);  // samples were lost
}

TEST(GrowthTracker, RssFiguresPerProcess) {
  NamingResolver resolver;
  GrowthTracker t(config(), resolver);
  auto snap = snapshot(0, 0);
  probe::RssEntry e;
  e.tgid = kPid;
  e.rss.seen_mask = 0b0011;  // file and anon seen
  e.rss.first[1] = 1 << 20;
  e.rss.cur[1] = 64 << 20;
  e.rss.peak[1] = 65 << 20;
  e.rss.first[0] = e.rss.cur[0] = e.rss.peak[0] = 3 << 20;
  snap.rss.push_back(e);
  snap.comm_of = [](int) { return std::string("grower"); };
  auto r = t.update(snap, 1.0);
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_EQ(r.processes[0].pid, static_cast<int>(kPid));
  EXPECT_EQ(r.processes[0].comm, "grower");
  EXPECT_TRUE(r.processes[0].rss_anon.seen);
  EXPECT_EQ(r.processes[0].rss_anon.current, 64 << 20);
  EXPECT_EQ(r.processes[0].rss_anon.peak, 65 << 20);
  EXPECT_EQ(r.processes[0].rss_file.first, 3 << 20);
  EXPECT_FALSE(r.processes[0].rss_shmem.seen);
}

}  // namespace
}  // namespace leakwatch::tracker
