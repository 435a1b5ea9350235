// PSS/USS only for suspects: a quiet process watched by comm is never read with
// smaps_rollup; once it grows above its baseline it is; a process larger than
// smaps_max_rss never is; one whose read cost more than smaps_max_cost is not read again.
#include <gtest/gtest.h>

#include "agent/agent.h"
#include "agent_loop_testing.h"
#include "agent_testing.h"

namespace leakwatch::agent {
namespace {
using leakwatch::testing::ChildProcess;
using leakwatch::testing::fixture;

const WatchedView* find_pid(const Snapshot& s, int pid) {
  for (const WatchedView& w : s.watched)
    if (!w.is_cgroup && w.pid == pid) return &w;
  return nullptr;
}

TEST(AgentSmaps, OnlySuspectsAreRead) {
  ChildProcess child({fixture("agent_grower"), "step"});
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path());
  c.memleak_sampling.enabled = false;
  c.targets.push_back({TargetSpec::Kind::kComm, "agent_grower", 0, "", 1});
  auto ag = Agent::create(c, AgentOptions{}).value();
  // Quiet: a rate is known after the window fills, and it is not above its baseline.
  for (int i = 0; i < 15; ++i) {
    ag->tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const Snapshot snap_w = ag->snapshot();  // the view points into it
  const WatchedView* w = find_pid(snap_w, child.pid());
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->eval.ready);
  EXPECT_FALSE(w->eval.above);
  EXPECT_FALSE(w->sample.detailed);
  // (Other tests' agent_grower processes may match the comm target too: only this child's
  // series are looked at.)
  const std::string pid_label = "pid=\"" + std::to_string(child.pid()) + "\"";
  EXPECT_FALSE(metric(ag->metrics_text(), "leakwatch_process_pss_bytes", pid_label));

  // It grows: a suspect, read from then on.
  bool read = false;
  for (int i = 0; i < 30 && !read; ++i) {
    ASSERT_EQ(child.command("anon 8"), "ok");
    ag->tick();
    const Snapshot snap_now = ag->snapshot();  // the view points into it
    const WatchedView* now = find_pid(snap_now, child.pid());
    ASSERT_NE(now, nullptr);
    read = now->sample.detailed && now->sample.pss > 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(read) << "a growing process gets PSS/USS";
  EXPECT_GT(ag->counters().smaps_reads, 0u);
  EXPECT_TRUE(metric(ag->metrics_text(), "leakwatch_process_pss_bytes", pid_label));
}

TEST(AgentSmaps, SizeAndCostCaps) {
  ChildProcess child({fixture("agent_grower"), "step"});
  ASSERT_EQ(child.read_line(), "ready");
  ASSERT_EQ(child.command("anon 16"), "ok");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path());
  c.memleak_sampling.enabled = false;
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});  // always a suspect

  AgentConfig big = c;
  big.detection.smaps_max_rss = 1024 * 1024;  // the child has 16 MiB and more
  auto capped = Agent::create(big, AgentOptions{}).value();
  for (int i = 0; i < 3; ++i) capped->tick();
  EXPECT_FALSE(capped->snapshot().watched.at(0).sample.detailed);
  EXPECT_EQ(capped->counters().smaps_reads, 0u);
  EXPECT_EQ(capped->counters().smaps_skipped, 3u);

  AgentConfig costly = c;
  costly.detection.smaps_max_cost_s = 0;  // every read costs more than nothing
  auto once = Agent::create(costly, AgentOptions{}).value();
  for (int i = 0; i < 5; ++i) once->tick();
  EXPECT_EQ(once->counters().smaps_reads, 1u);
  // The figures of that one read are still shown.
  EXPECT_TRUE(once->snapshot().watched.at(0).sample.detailed);
  EXPECT_GT(once->snapshot().watched.at(0).sample.pss, 16u * 1024 * 1024);
}

}  // namespace
}  // namespace leakwatch::agent
