// The agent loop on real processes (tests/fixtures/agent_grower.c) with time compressed
// (100 ms samples, 1 s windows) and a fake Investigator in place of BPF memleak.
#include <gtest/gtest.h>

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "metrics/system_collector.h"
#include "agent_loop_testing.h"
#include "agent_testing.h"
#include "common/atomic_file.h"
#include "report/json_writer.h"

namespace leakwatch::agent {
namespace {
namespace fs = std::filesystem;
using leakwatch::testing::ChildProcess;
using leakwatch::testing::fixture;

uint64_t total(const std::map<std::pair<std::string, std::string>, uint64_t>& m) {
  uint64_t n = 0;
  for (auto& [k, v] : m) n += v;
  return n;
}

TEST(AgentLoop, LeakingProcessIsInvestigatedOnceAndReportStored) {
  ChildProcess child({fixture("agent_grower"), "leak", "2048"});  // 2 MiB/s
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path() + "/reports");
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 3});
  FakeLog log;
  AgentOptions o;
  o.investigator = [&] { return std::make_unique<FakeInvestigator>(log, 10); };
  auto a = Agent::create(c, o);
  ASSERT_TRUE(a) << a.error().message;
  Agent& ag = **a;

  ASSERT_TRUE(tick_until(ag, 15, [&] { return ag.counters().reports_stored >= 1; }))
      << "no investigation within 15 s";
  // Keep going: the trigger still holds, but the process is in its cooldown.
  tick_until(ag, 1.0, [] { return false; });
  ASSERT_TRUE(ag.wait_idle(5));
  AgentCounters cnt = ag.counters();
  EXPECT_EQ(cnt.reports_stored, 1u);
  EXPECT_EQ((cnt.investigations[{"pid:" + std::to_string(child.pid()), "duration"}]), 1u);
  EXPECT_GE((cnt.triggers[{"pid:" + std::to_string(child.pid()), "memory_growth_rate"}]), 1u);
  EXPECT_EQ(cnt.lost["stack_lost"], 1u);

  std::lock_guard lock(log.mu);
  ASSERT_EQ(log.requests.size(), 1u);
  const InvestigationRequest& req = log.requests[0];
  EXPECT_EQ(req.pid, child.pid());
  EXPECT_EQ(req.comm, "agent_grower");
  // The default sampling (no OOM condition): by bytes.
  EXPECT_EQ(req.sampling, (report::Sampling{report::SamplingMode::kBytes, 512 * 1024}));
  EXPECT_DOUBLE_EQ(req.duration_s, 0.3);      // duration_limit under the ci cap
  EXPECT_DOUBLE_EQ(req.overhead_budget_percent, 10);
  EXPECT_NE(req.reason.find("memory_growth_rate"), std::string::npos) << req.reason;

  auto index = nlohmann::json::parse(ag.reports_json());
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0]["top_function"], "leaky_function");
  EXPECT_EQ(index[0]["pid"], child.pid());
  EXPECT_TRUE(index[0]["growth"].is_null());  // growth_seconds 0: no growth step
  EXPECT_TRUE(cnt.growth_steps.empty());
  const std::string dir = tmp.path() + "/reports/" + index[0]["id"].get<std::string>();
  auto rep = report::read_json(read_file(dir + "/report.json").value());
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(rep->stacks.at(0).frames.at(0).function, "leaky_function");

  // The exported growth rate is the child's: at most its nominal 2 MiB/s (+20%), and not
  // far below (it sleeps between steps, so a loaded machine only slows it down).
  std::string text = ag.metrics_text();
  std::string pid_label = "pid=\"" + std::to_string(child.pid()) + "\"";
  auto rate = metric(text, "leakwatch_growth_rate_bytes_per_second", pid_label);
  ASSERT_TRUE(rate) << text;
  EXPECT_GT(*rate, 0.4 * 2 * 1048576.0);
  EXPECT_LT(*rate, 1.2 * 2 * 1048576.0);
  EXPECT_TRUE(metric(text, "leakwatch_process_rss_bytes", pid_label));
  EXPECT_TRUE(metric(text, "leakwatch_process_pss_bytes", pid_label));
  EXPECT_TRUE(metric(text, "leakwatch_process_minor_faults_per_second", pid_label));
  EXPECT_EQ(metric(text, "leakwatch_investigations_total", "outcome=\"duration\""), 1.0);
  EXPECT_NE(text.find("leakwatch_agent_cpu_seconds_total "), std::string::npos);
  EXPECT_NE(text.find("leakwatch_agent_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(text.find("leakwatch_investigation_lost_total 1"), std::string::npos);
}

TEST(AgentLoop, WarmUpThatLevelsOffIsNotInvestigated) {
  ChildProcess child({fixture("agent_grower"), "warmup", "64", "1"});  // 64 MiB in 1 s
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path());
  c.detection.sustained_for_s = 3.0;
  c.memleak_sampling.trigger_conditions.rss_increase_threshold =
      Threshold{Comparison::kGreater, 10e6};
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});
  FakeLog log;
  AgentOptions o;
  o.investigator = [&] { return std::make_unique<FakeInvestigator>(log, 1); };
  auto ag = Agent::create(c, o).value();
  double max_rate = 0;
  tick_until(*ag, 6.0, [&] {
    for (auto& w : ag->snapshot().watched) max_rate = std::max(max_rate, w.eval.growth_rate);
    return false;
  });
  EXPECT_GT(max_rate, 16 * 1048576.0) << "the warm-up was seen";
  EXPECT_EQ(total(ag->counters().triggers), 0u);
  EXPECT_EQ(ag->counters().reports_stored, 0u);
  ASSERT_EQ(ag->snapshot().watched.size(), 1u);
  const Evaluation last = ag->snapshot().watched[0].eval;  // a copy: snapshot() is one
  EXPECT_FALSE(last.sustained);
  EXPECT_LT(std::fabs(last.growth_rate), 1048576.0);  // flat again
  std::lock_guard lock(log.mu);
  EXPECT_TRUE(log.requests.empty());
}

// A copy of the fixture under a unique name, so a comm target matches only our children.
std::string unique_fixture_copy(const TempDir& tmp) {
  std::string name = "lwg" + std::to_string(::getpid() % 100000);
  std::string path = tmp.path() + "/" + name;
  fs::copy_file(fixture("agent_grower"), path);
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

TEST(AgentLoop, RestartStartsAFreshHistory) {
  TempDir tmp;
  const std::string exe = unique_fixture_copy(tmp);
  const std::string comm = fs::path(exe).filename();
  AgentConfig c = fast_config(tmp.path() + "/reports");
  c.memleak_sampling.enabled = false;
  c.targets.push_back({TargetSpec::Kind::kComm, comm, 0, "", 1});
  auto ag = Agent::create(c, AgentOptions{}).value();

  int first_pid;
  {
    ChildProcess first({exe, "leak", "2048"});
    ASSERT_EQ(first.read_line(), "ready");
    first_pid = first.pid();
    ASSERT_TRUE(tick_until(*ag, 8, [&] {
      auto w = ag->snapshot().watched;
      return w.size() == 1 && w[0].eval.ready && w[0].eval.growth_rate > 1048576.0;
    }));
  }
  ChildProcess second({exe, "step"});
  ASSERT_EQ(second.read_line(), "ready");
  ag->tick();
  auto w = ag->snapshot().watched;
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].pid, second.pid());
  EXPECT_NE(w[0].pid, first_pid);
  EXPECT_FALSE(w[0].eval.ready);  // no history carried over
  EXPECT_FALSE(w[0].rates.has_value());
  EXPECT_DOUBLE_EQ(w[0].eval.increase_bytes, 0);
}

TEST(AgentLoop, OneInvestigationAtATimePerTarget) {
  TempDir tmp;
  const std::string exe = unique_fixture_copy(tmp);
  ChildProcess a1({exe, "leak", "2048"}), a2({exe, "leak", "2048"});
  ASSERT_EQ(a1.read_line(), "ready");
  ASSERT_EQ(a2.read_line(), "ready");
  AgentConfig c = fast_config(tmp.path() + "/reports");
  c.memleak_sampling.max_concurrent = 4;
  c.memleak_sampling.sampling_config.duration_limit_s = 1.0;
  c.targets.push_back({TargetSpec::Kind::kComm, fs::path(exe).filename(), 0, "", 1});
  FakeLog log;
  AgentOptions o;
  o.investigator = [&] { return std::make_unique<FakeInvestigator>(log, 10); };
  auto ag = Agent::create(c, o).value();
  // Both children trigger; the target gets one investigation, then (cooldown is per
  // process) the other child's.
  ASSERT_TRUE(tick_until(*ag, 20, [&] { return ag->counters().reports_stored >= 2; }));
  ASSERT_TRUE(ag->wait_idle(5));
  std::lock_guard lock(log.mu);
  EXPECT_EQ(log.max_running, 1);
  ASSERT_GE(log.requests.size(), 2u);
  EXPECT_NE(log.requests[0].pid, log.requests[1].pid);
}

TEST(AgentLoop, WithoutAnInvestigatorTheTriggerIsCountedAsUnavailable) {
  ChildProcess child({fixture("agent_grower"), "leak", "2048"});
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path());
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});
  auto ag = Agent::create(c, AgentOptions{}).value();
  const std::pair<std::string, std::string> key{"pid:" + std::to_string(child.pid()),
                                                "unavailable"};
  ASSERT_TRUE(tick_until(*ag, 15, [&] { return ag->counters().investigations[key] >= 1; }));
  tick_until(*ag, 1.0, [] { return false; });
  EXPECT_EQ(ag->counters().investigations[key], 1u);  // cooldown: not retried every tick
  EXPECT_EQ(ag->counters().reports_stored, 0u);
}

TEST(AgentLoop, UnreachableTargetsAreClearErrors) {
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path());
  c.targets.push_back({TargetSpec::Kind::kPid, "", 0x3ffffff0, "", 7});
  auto a = Agent::create(c, AgentOptions{});
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("pid:1073741808 (line 7): no such process"),
            std::string::npos)
      << a.error().message;

  c.targets = {{TargetSpec::Kind::kCgroup, "", 0, "/sys/fs/cgroup/no/such/group", 4}};
  a = Agent::create(c, AgentOptions{});
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("cgroup:/sys/fs/cgroup/no/such/group (line 4)"),
            std::string::npos)
      << a.error().message;

  // A name with no process is not an error (it may start later) but is shown.
  c.targets = {{TargetSpec::Kind::kComm, "no-such-proc-x", 0, "", 2}};
  auto ok = Agent::create(c, AgentOptions{}).value();
  ok->tick();
  auto lines = ok->status_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "[comm:no-such-proc-x] no process named no-such-proc-x");
  EXPECT_EQ(metric(ok->metrics_text(), "leakwatch_target_up", "no-such-proc-x"), 0.0);
}

TEST(AgentLoop, ReloadKeepsHistoryAndAddsTargets) {
  ChildProcess child({fixture("agent_grower"), "leak", "1024"});
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path());
  c.memleak_sampling.enabled = false;
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});
  auto ag = Agent::create(c, AgentOptions{}).value();
  ASSERT_TRUE(tick_until(*ag, 8, [&] {
    auto w = ag->snapshot().watched;
    return !w.empty() && w[0].eval.ready;
  }));
  c.targets.push_back({TargetSpec::Kind::kPid, "", ::getpid(), "", 2});
  ASSERT_TRUE(ag->reload(c));
  ag->tick();
  auto w = ag->snapshot().watched;
  ASSERT_EQ(w.size(), 2u);
  EXPECT_TRUE(w[0].eval.ready);   // the child's history survived the reload
  EXPECT_FALSE(w[1].eval.ready);  // the new target starts fresh
  // A reload naming a missing pid is rejected and the running configuration kept.
  AgentConfig bad = c;
  bad.targets.push_back({TargetSpec::Kind::kPid, "", 0x3ffffff0, "", 3});
  EXPECT_FALSE(ag->reload(bad));
  EXPECT_EQ(ag->config().targets.size(), 2u);
}

// A cgroup target over a cgroup v2 directory laid out as the kernel does (this host binds
// the memory controller to cgroup v1, so the files are written by the test, starting from
// the copies in tests/data/proc/cgroup_v2): its anonymous memory grows 20 MB per sample,
// the cgroup-level detector triggers and the member process is investigated.
TEST(AgentLoop, CgroupTargetTriggersAndInvestigatesItsMember) {
  ChildProcess member({fixture("agent_grower"), "step"});
  ASSERT_EQ(member.read_line(), "ready");
  TempDir tmp;
  const std::string root = tmp.path() + "/cgroup";
  const std::string svc = root + "/system.slice/svc.service";
  fs::create_directories(svc);
  const std::string data = std::string(LEAKWATCH_TEST_DATA) + "/proc/cgroup_v2/";
  for (const char* f : {"memory.max", "memory.events", "memory.pressure"})
    fs::copy_file(data + f, svc + "/" + f);
  ASSERT_TRUE(write_file_atomic(root + "/system.slice/memory.max", "max\n"));
  ASSERT_TRUE(write_file_atomic(svc + "/cgroup.procs", std::to_string(member.pid()) + "\n"));
  uint64_t anon = 300'000'000;
  auto write_usage = [&] {
    ASSERT_TRUE(write_file_atomic(svc + "/memory.stat",
                                  "anon " + std::to_string(anon) + "\nfile 50000000\n"));
    ASSERT_TRUE(write_file_atomic(svc + "/memory.current", std::to_string(anon + 50'000'000)));
  };
  write_usage();

  AgentConfig c = fast_config(tmp.path() + "/reports");
  c.memleak_sampling.trigger_conditions.oom_risk_score = Threshold{Comparison::kGreater, 0.7};
  c.targets.push_back({TargetSpec::Kind::kCgroup, "", 0, svc, 1});
  FakeLog log;
  AgentOptions o;
  o.cgroup_root = root;
  o.investigator = [&] { return std::make_unique<FakeInvestigator>(log, 10); };
  auto ag = Agent::create(c, o).value();
  ASSERT_TRUE(tick_until(*ag, 15, [&] {
    anon += 20'000'000;
    write_usage();
    return ag->counters().reports_stored >= 1;
  }));
  ASSERT_TRUE(ag->wait_idle(5));
  {
    std::lock_guard lock(log.mu);
    ASSERT_EQ(log.requests.size(), 1u);
    EXPECT_EQ(log.requests[0].pid, member.pid());
    EXPECT_EQ(log.requests[0].cgroup, svc);
    EXPECT_EQ(log.requests[0].target, "cgroup:" + svc);
    // The OOM-risk condition held too: the aggressive sampling is used.
    EXPECT_NE(log.requests[0].reason.find("oom_risk_score"), std::string::npos)
        << log.requests[0].reason;
    EXPECT_EQ(log.requests[0].sampling,
              (report::Sampling{report::SamplingMode::kBytes, 128 * 1024}));
  }
  ag->tick();
  auto snap = ag->snapshot();
  ASSERT_EQ(snap.watched.size(), 2u);  // the cgroup, then its member
  ASSERT_TRUE(snap.watched[0].is_cgroup);
  const metrics::CgroupSample& cg = *snap.watched[0].cgroup;
  EXPECT_EQ(cg.max, 536870912u);
  EXPECT_EQ(cg.effective_max, 536870912u);  // the parent is unlimited
  EXPECT_EQ(cg.events.oom_kill, 1u);
  ASSERT_TRUE(cg.pressure.has_value());
  // Fast growth towards a 512 MiB limit: the OOM risk is high.
  EXPECT_GT(snap.watched[0].eval.oom_risk, 0.9);
  // 20 MB per tick of at least 100 ms: at most 200 MB/s (slower ticks under load).
  EXPECT_GT(snap.watched[0].eval.growth_rate, 50e6);
  EXPECT_LT(snap.watched[0].eval.growth_rate, 1.2 * 200e6);
  EXPECT_EQ(snap.watched[1].pid, member.pid());

  std::string text = ag->metrics_text();
  EXPECT_EQ(metric(text, "leakwatch_cgroup_memory_max_bytes", svc), 536870912.0);
  EXPECT_EQ(metric(text, "leakwatch_cgroup_oom_kill_events_total", svc), 1.0);
  EXPECT_EQ(metric(text, "leakwatch_memory_pressure_percent",
                   "scope=\"cgroup\",cgroup=\"" + svc + "\",kind=\"some\",window=\"10s\""),
            12.41);
  auto lines = ag->status_lines();
  ASSERT_GE(lines.size(), 2u);
  EXPECT_TRUE(lines[0].starts_with("[cgroup:" + svc + "] cgroup: current ")) << lines[0];
  EXPECT_NE(lines[0].find("max 512.0 MiB"), std::string::npos) << lines[0];
}

TEST(AgentLoop, CostlySmapsRollupIsReadLessOften) {
  // With a 1 us budget every smaps_rollup read is "costly" (a read costs tens of us), so
  // it happens every few samples and PSS/USS are carried in between.
  ChildProcess child({fixture("agent_grower"), "step"});
  ASSERT_EQ(child.read_line(), "ready");
  ASSERT_EQ(child.command("anon 16"), "ok");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path());
  c.memleak_sampling.enabled = false;
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});
  AgentOptions o;
  o.smaps_budget_s = 1e-6;
  auto ag = Agent::create(c, o).value();
  int reads = 0;
  const int ticks = 12;
  for (int i = 0; i < ticks; ++i) {
    ag->tick();
    auto w = ag->snapshot().watched;
    ASSERT_EQ(w.size(), 1u);
    if (w[0].sample.smaps_seconds > 0) ++reads;
    EXPECT_TRUE(w[0].sample.detailed);
    EXPECT_GT(w[0].sample.pss, 16u * 1024 * 1024);  // read or carried, always there
  }
  EXPECT_GE(reads, 1);
  EXPECT_LE(reads, ticks / 2);
  // With a budget above a read's cost (a second: whatever the build, sanitizers included),
  // a small process is read every sample.
  AgentOptions generous;
  generous.smaps_budget_s = 1;
  auto every = Agent::create(c, generous).value();
  for (int i = 0; i < 3; ++i) {
    every->tick();
    EXPECT_GT(every->snapshot().watched.at(0).sample.smaps_seconds, 0.0);
  }
}

TEST(AgentLoop, StatusLinesDescribeEachProcess) {
  ChildProcess child({fixture("agent_grower"), "step"});
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path());
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});
  auto ag = Agent::create(c, AgentOptions{}).value();
  ag->tick();
  auto lines = ag->status_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].starts_with("[pid:" + std::to_string(child.pid()) + "] pid " +
                                   std::to_string(child.pid()) + " agent_grower: rss "))
      << lines[0];
  EXPECT_NE(lines[0].find("growth: collecting"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("oom risk 0.00"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace leakwatch::agent
