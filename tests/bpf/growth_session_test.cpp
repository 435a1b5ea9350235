// The growth session (session::GrowthSession, what `leakwatch growth` and the agent's growth
// step run) with real BPF on tests/fixtures/gr_growth.c, with both user-stack walkers, and
// driven by the session loop as the agent drives it.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "support/process.h"
#include "session/driver.h"
#include "session/growth_session.h"

namespace leakwatch::testing {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Index of the first frame named `fn` in the first `depth` frames, or -1.
int frame_index(const report::GrowthStack& s, const std::string& fn, size_t depth = 4) {
  for (size_t i = 0; i < s.frames.size() && i < depth; i++)
    if (s.frames[i].function == fn) return static_cast<int>(i);
  return -1;
}

struct Observed {
  double heap_faulted = 0;       // faults whose innermost frame is grow_heap_pages
  double keep_mapped_named = 0;  // mapped bytes of stacks naming keep_mappings
  double mapped_total = 0;
  std::string stacks;
};

Observed observe(const report::GrowthReport& r) {
  Observed o;
  for (const auto& s : r.stacks) {
    if (frame_index(s, "grow_heap_pages", 1) == 0) o.heap_faulted += s.faulted_bytes.estimate;
    if (frame_index(s, "keep_mappings") >= 0) o.keep_mapped_named += s.mapped_bytes;
    o.mapped_total += s.mapped_bytes;
    o.stacks += "  faulted " + std::to_string(s.faulted_bytes.estimate) + " mapped " +
                std::to_string(s.mapped_bytes) + ":";
    for (const auto& f : s.frames) o.stacks += " " + f.function;
    o.stacks += "\n";
  }
  return o;
}

// Runs the fixture's growth under a session with the given walker; returns the report.
report::GrowthReport run_session(probe::StackWalker walker) {
  Proc target({fixture("gr_growth"), "wait"});
  EXPECT_TRUE(target.wait_for("ready"));
  session::GrowthSessionOptions o;
  o.pid = target.pid();
  o.probe.walker = walker;
  o.probe.sample_period = 1;
  auto session = session::GrowthSession::Create(o);
  EXPECT_TRUE(session) << (session ? "" : session.error().message);
  if (!session) return {};
  EXPECT_TRUE((*session)->start());
  target.write("go\n");
  // Collect while the fixture runs, as the session loop does on its 100 ms tick.
  bool done = false;
  for (int i = 0; i < 400 && !done; i++) {
    (*session)->collect();
    done = target.wait_for("done", std::chrono::milliseconds(50)).has_value();
  }
  EXPECT_TRUE(done);
  report::GrowthReport r = (*session)->report(true);
  target.close_stdin();
  target.wait();
  return r;
}

TEST(GrowthSession, BothWalkersNameTheFaultingFunction) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  auto fp = run_session(probe::StackWalker::kFramePointers);
  auto kernel = run_session(probe::StackWalker::kKernel);
  Observed o_fp = observe(fp), o_kernel = observe(kernel);
  EXPECT_EQ(fp.stack_walker, "fp");
  EXPECT_EQ(kernel.stack_walker, "kernel");
  for (const Observed* o : {&o_fp, &o_kernel}) {
    EXPECT_GE(o->heap_faulted, 64 * kMiB) << o->stacks;
    EXPECT_LE(o->heap_faulted, 64 * kMiB + 64 * 1024) << o->stacks;
    // Mapped bytes do not depend on the walker: 64 + 30 + 8 + 20 MiB from the fixture.
    EXPECT_EQ(o->mapped_total, (64 + 30 + 8 + 20) * kMiB) << o->stacks;
  }
  // The syscall wrappers keep no frame: only leakwatch's walk finds their caller (the
  // kernel's walk goes from the wrapper straight to the caller's caller).
  EXPECT_EQ(o_fp.keep_mapped_named, (30 + 8) * kMiB) << o_fp.stacks;
  EXPECT_LT(o_kernel.keep_mapped_named, (30 + 8) * kMiB) << o_kernel.stacks;
  for (const auto& [name, value] : fp.lost) EXPECT_EQ(value, 0u) << name;
}

// The agent's way: the session loop until `duration_s`, `stop` or the target's exit.
Result<report::GrowthReport> run_for(const session::GrowthSessionOptions& o, double duration_s,
                                     const std::atomic<bool>& stop) {
  auto s = session::GrowthSession::Create(o);
  if (!s) return std::unexpected(s.error());
  session::DriveOptions d;
  d.duration_s = duration_s;
  d.stop = &stop;
  auto out = session::drive(**s, d, {});
  if (!out.started) return fail("{}", out.detail);
  return (*s)->report(true);
}

TEST(GrowthSession, RunForTracesOnlyTheTargetAndStopsOnRequest) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  // A target that does nothing: the faults of everything else on the machine (this test
  // touching 16 MiB meanwhile included) must not show up.
  Proc idle({"sleep", "60"});
  session::GrowthSessionOptions cfg;
  cfg.pid = idle.pid();
  cfg.probe.sample_period = 1;
  std::atomic<bool> stop{false};
  std::thread toucher([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // attached by then
    std::vector<char> mine(16 << 20);
    for (size_t i = 0; i < mine.size(); i += 4096) mine[i] = 1;
    stop = true;
  });
  auto start = std::chrono::steady_clock::now();
  auto r = run_for(cfg, 30, stop);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  toucher.join();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_LT(took, 20);  // ended by `stop`, not by the 30 s duration
  EXPECT_TRUE(r->final);
  EXPECT_EQ(r->totals.faults, 0u);
  EXPECT_TRUE(r->stacks.empty());
  idle.signal(SIGKILL);
  idle.wait();
}

TEST(GrowthSession, RunForEndsWhenTheTargetExits) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  Proc target({fixture("gr_growth"), "wait"});
  ASSERT_TRUE(target.wait_for("ready"));
  session::GrowthSessionOptions cfg;
  cfg.pid = target.pid();
  cfg.probe.sample_period = 4;
  std::atomic<bool> stop{false};
  std::thread driver([&] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    target.write("go\n");
    target.wait_for("done");
    target.close_stdin();
    target.wait();
  });
  auto r = run_for(cfg, 60, stop);
  driver.join();
  ASSERT_TRUE(r) << r.error().message;
  Observed o = observe(*r);
  EXPECT_NEAR(o.heap_faulted, 64 * kMiB, 0.3 * 64 * kMiB) << o.stacks;
  EXPECT_EQ(o.keep_mapped_named, (30 + 8) * kMiB) << o.stacks;
  EXPECT_LT(r->duration_s, 50);
}

TEST(GrowthSession, BadCgroupFailsWithoutAttaching) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  session::GrowthSessionOptions cfg;
  cfg.cgroup = "/proc";  // a directory, not a cgroup
  auto session = session::GrowthSession::Create(cfg);
  ASSERT_FALSE(session);
  EXPECT_NE(session.error().message.find("--cgroup /proc"), std::string::npos)
      << session.error().message;
  cfg.cgroup = "";
  session = session::GrowthSession::Create(cfg);
  ASSERT_FALSE(session);  // neither a pid nor a cgroup
}

}  // namespace
}  // namespace leakwatch::testing
