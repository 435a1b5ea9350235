// The agent's growth step (layer 2) between a trigger and the allocation trace (layer 3),
// with fakes in place of the BPF tracers: order and time box, what is stored, what is
// counted, and what happens when the step fails or the agent stops during it.  The agent
// runs on a real leaking process (tests/fixtures/agent_grower.c) with time compressed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/report_store.h"
#include "agent_loop_testing.h"
#include "agent_testing.h"
#include "common/atomic_file.h"

namespace leakwatch::agent {
namespace {
namespace fs = std::filesystem;
using leakwatch::testing::ChildProcess;
using leakwatch::testing::fixture;
using Clock = std::chrono::steady_clock;

struct GrowthLog {
  std::mutex mu;
  std::vector<InvestigationRequest> requests;
  Clock::time_point ended;
  bool started = false;
};

// What the fake growth step does: return a report at the end of its time box, fail at
// once, or run until the agent stops.
enum class Mode { kReport, kFail, kUntilStop };

class FakeGrowthLocator : public GrowthLocator {
 public:
  FakeGrowthLocator(GrowthLog& log, Mode mode) : log_(log), mode_(mode) {}
  Result<GrowthResult> run(const InvestigationRequest& req,
                           const std::atomic<bool>& stop) override {
    {
      std::lock_guard lock(log_.mu);
      log_.requests.push_back(req);
      log_.started = true;
    }
    if (mode_ == Mode::kFail) return fail("growth step: no kernel BTF at /nonexistent");
    const auto until = Clock::now() + std::chrono::milliseconds(
                                          static_cast<int>(req.duration_s * 1000));
    while (!stop && (mode_ == Mode::kUntilStop || Clock::now() < until))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    GrowthResult r;
    r.report.target.pid = req.pid;
    r.report.target.comm = req.comm;
    r.report.final = true;
    r.report.duration_s = req.duration_s;
    // As the real step sees a mapping: the syscall wrapper innermost, then its caller.
    report::GrowthStack s;
    s.pid = req.pid;
    report::Frame wrapper, grower, main_frame;
    wrapper.function = "mmap64";
    wrapper.module = "libc.so.6";
    grower.function = "grow_here";
    grower.module = "agent_grower";
    main_frame.function = "main";
    s.frames = {wrapper, grower, main_frame};
    s.mapped_bytes = 4 << 20;
    s.growth_bytes = 4 << 20;
    r.report.stacks.push_back(s);
    r.report.totals.mapped_bytes = 4 << 20;
    r.report.lost = {{"stack_lost", 2}, {"events_lost", 0}};
    r.end = stop ? InvestigationEnd::kStopped : InvestigationEnd::kDuration;
    std::lock_guard lock(log_.mu);
    log_.ended = Clock::now();
    return r;
  }

 private:
  GrowthLog& log_;
  Mode mode_;
};

// Investigation start times, in the order the fake investigator was called.
struct StartLog {
  std::mutex mu;
  std::vector<Clock::time_point> started;
};

class TimedInvestigator : public Investigator {
 public:
  TimedInvestigator(FakeLog& log, StartLog& starts) : inner_(log, 10), starts_(starts) {}
  Result<InvestigationResult> run(const InvestigationRequest& req,
                                  const std::atomic<bool>& stop) override {
    {
      std::lock_guard lock(starts_.mu);
      starts_.started.push_back(Clock::now());
    }
    return inner_.run(req, stop);
  }

 private:
  FakeInvestigator inner_;
  StartLog& starts_;
};

// fast_config, triggering sooner: these tests are about what follows the trigger.
AgentConfig quick_trigger_config(const std::string& reports_dir) {
  AgentConfig c = fast_config(reports_dir);
  c.detection.rate_window_s = 0.5;
  c.detection.sustained_for_s = 0.3;
  return c;
}

bool has(const nlohmann::json& files, const std::string& name) {
  for (const auto& f : files)
    if (f == name) return true;
  return false;
}

TEST(AgentGrowthStep, RunsFirstWithinTheTimeBoxAndIsStoredWithTheAllocationReport) {
  ChildProcess child({fixture("agent_grower"), "leak", "2048"});
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = quick_trigger_config(tmp.path() + "/reports");
  c.memleak_sampling.sampling_config.duration_limit_s = 1.0;
  c.memleak_sampling.sampling_config.growth_seconds = 0.4;  // under the cap of 0.5
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});
  FakeLog log;
  StartLog starts;
  GrowthLog glog;
  AgentOptions o;
  o.investigator = [&] { return std::make_unique<TimedInvestigator>(log, starts); };
  o.growth = [&] { return std::make_unique<FakeGrowthLocator>(glog, Mode::kReport); };
  auto ag = Agent::create(c, o).value();
  ASSERT_TRUE(tick_until(*ag, 15, [&] { return ag->counters().reports_stored >= 1; }));
  ASSERT_TRUE(ag->wait_idle(5));

  const std::string target = "pid:" + std::to_string(child.pid());
  {
    std::scoped_lock lock(log.mu, glog.mu, starts.mu);
    ASSERT_EQ(glog.requests.size(), 1u);
    ASSERT_EQ(log.requests.size(), 1u);
    const InvestigationRequest& g = glog.requests[0];
    EXPECT_EQ(g.pid, child.pid());
    EXPECT_EQ(g.target, target);
    EXPECT_DOUBLE_EQ(g.duration_s, 0.4);
    EXPECT_NE(g.reason.find("memory_growth_rate"), std::string::npos) << g.reason;
    // The allocation trace starts after the growth step and gets the rest of the box.
    EXPECT_GE(starts.started.at(0), glog.ended);
    EXPECT_LE(log.requests[0].duration_s, 0.6);
    EXPECT_GT(log.requests[0].duration_s, 0.3);
  }

  auto index = nlohmann::json::parse(ag->reports_json());
  ASSERT_EQ(index.size(), 1u);
  const auto& e = index[0];
  EXPECT_EQ(e["end"], "duration");
  EXPECT_EQ(e["top_function"], "leaky_function");
  for (const char* f : {"report.json", "report.txt", "profile.pb.gz", "growth.json",
                        "growth.txt", "growth.pb.gz", "investigation.json"})
    EXPECT_TRUE(has(e["files"], f)) << f << " not in " << e["files"].dump();
  ASSERT_TRUE(e["growth"].is_object()) << e.dump();
  EXPECT_EQ(e["growth"]["outcome"], "duration");
  EXPECT_EQ(e["growth"]["top_function"], "grow_here");  // past the mmap wrapper
  EXPECT_DOUBLE_EQ(e["growth"]["mapped_bytes"].get<double>(), 4 << 20);
  EXPECT_EQ(e["growth"]["lost"], 2);

  const std::string dir = tmp.path() + "/reports/" + e["id"].get<std::string>();
  auto growth = nlohmann::json::parse(read_file(dir + "/growth.json").value());
  EXPECT_EQ(growth["kind"], "growth");
  EXPECT_EQ(growth["target"]["pid"], child.pid());
  EXPECT_EQ(growth["stacks"][0]["frames"][1]["function"], "grow_here");
  const std::string text = read_file(dir + "/growth.txt").value();
  EXPECT_NE(text.find("grow_here"), std::string::npos) << text;
  const std::string pprof = read_file(dir + "/growth.pb.gz").value();
  ASSERT_GE(pprof.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(pprof[0]), 0x1f);  // gzip
  EXPECT_EQ(static_cast<unsigned char>(pprof[1]), 0x8b);
  auto inv = nlohmann::json::parse(read_file(dir + "/investigation.json").value());
  EXPECT_DOUBLE_EQ(inv["growth"]["requested_s"].get<double>(), 0.4);
  EXPECT_EQ(inv["growth"]["outcome"], "duration");
  EXPECT_LE(inv["request"]["duration_s"].get<double>(), 0.6);  // the allocation trace's box

  AgentCounters cnt = ag->counters();
  EXPECT_EQ((cnt.growth_steps[{target, "duration"}]), 1u);
  EXPECT_EQ(cnt.lost["growth_stack_lost"], 2u);
  EXPECT_EQ(cnt.lost["stack_lost"], 1u);  // the allocation report's, kept apart
  const std::string m = ag->metrics_text();
  const std::string lb = "target=\"" + target + "\",outcome=";
  EXPECT_EQ(metric(m, "leakwatch_growth_steps_total", lb + "\"duration\""), 1.0) << m;
  EXPECT_EQ(metric(m, "leakwatch_growth_steps_total", lb + "\"failed\""), 0.0) << m;
  EXPECT_EQ(metric(m, "leakwatch_investigation_lost_by_counter_total",
                   "counter=\"growth_stack_lost\""),
            2.0);
}

// The steps alone (run_investigation, what each investigation thread runs): a growth step
// that fails, or cannot run at all, is recorded with its reason and the allocation trace
// runs with the whole time box; the record is stored without growth files.
TEST(AgentGrowthStep, WhenItFailsOrCannotRunTheAllocationTraceStillRuns) {
  InvestigationRequest req;
  req.pid = ::getpid();
  req.comm = "unit_tests";
  req.target = "pid:" + std::to_string(req.pid);
  req.duration_s = 0.3;
  req.reason = "memory_growth_rate +12.0 MiB/min";
  for (const std::string outcome : {"failed", "unavailable"}) {
    SCOPED_TRACE(outcome);
    FakeLog log;
    GrowthLog glog;
    GrowthLocatorFactory growth = [&]() -> std::unique_ptr<GrowthLocator> {
      if (outcome == "unavailable") return nullptr;  // e.g. no BPF permission
      return std::make_unique<FakeGrowthLocator>(glog, Mode::kFail);
    };
    InvestigatorFactory investigator = [&] { return std::make_unique<FakeInvestigator>(log, 10); };
    std::atomic<bool> stop{false};
    InvestigationRecord rec = run_investigation(req, 0.15, growth, investigator, stop);

    EXPECT_EQ(glog.requests.size(), outcome == "failed" ? 1u : 0u);
    ASSERT_EQ(log.requests.size(), 1u);
    EXPECT_GT(log.requests[0].duration_s, 0.25);  // nearly the whole box: no time was used
    EXPECT_EQ(rec.end, "duration");
    ASSERT_TRUE(rec.memleak);
    EXPECT_TRUE(rec.memleak_error.empty());
    ASSERT_TRUE(rec.growth);
    EXPECT_EQ(rec.growth->outcome, outcome);
    EXPECT_DOUBLE_EQ(rec.growth->requested_s, 0.15);
    EXPECT_FALSE(rec.growth->result);
    EXPECT_NE(rec.growth->error.find(outcome == "failed" ? "no kernel BTF" : "no growth locator"),
              std::string::npos)
        << rec.growth->error;

    TempDir tmp;
    auto store = ReportStore::open(tmp.path(), ReportsConfig{}).value();
    auto e = store->store(rec);
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_EQ(e->files, (std::vector<std::string>{"report.json", "report.txt", "profile.pb.gz",
                                                  "investigation.json"}));
    ASSERT_TRUE(e->growth);
    EXPECT_EQ(e->growth->outcome, outcome);
    EXPECT_EQ(e->growth->error, rec.growth->error);
    EXPECT_EQ(e->top_function, "leaky_function");
  }
}

TEST(AgentGrowthStep, StoppingDuringItKeepsItsReportAndSkipsTheAllocationTrace) {
  ChildProcess child({fixture("agent_grower"), "leak", "2048"});
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = quick_trigger_config(tmp.path() + "/reports");
  c.memleak_sampling.sampling_config.duration_limit_s = 60;
  c.memleak_sampling.sampling_config.growth_seconds = 20;
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});
  FakeLog log;
  GrowthLog glog;
  AgentOptions o;
  o.investigator = [&] { return std::make_unique<FakeInvestigator>(log, 10); };
  o.growth = [&] { return std::make_unique<FakeGrowthLocator>(glog, Mode::kUntilStop); };
  auto ag = Agent::create(c, o).value();
  ASSERT_TRUE(tick_until(*ag, 15, [&] {
    std::lock_guard lock(glog.mu);
    return glog.started;
  }));
  const auto t0 = Clock::now();
  ag->shutdown();  // what SIGTERM does
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 2.0);

  {
    std::lock_guard lock(log.mu);
    EXPECT_TRUE(log.requests.empty()) << "the allocation trace ran after the stop";
  }
  auto index = nlohmann::json::parse(ag->reports_json());
  ASSERT_EQ(index.size(), 1u);
  const auto& e = index[0];
  EXPECT_EQ(e["end"], "stopped");
  EXPECT_EQ(e["growth"]["outcome"], "stopped");
  EXPECT_NE(e["memleak_error"].get<std::string>().find("not run"), std::string::npos);
  EXPECT_TRUE(has(e["files"], "growth.json"));
  EXPECT_TRUE(has(e["files"], "investigation.json"));
  EXPECT_FALSE(has(e["files"], "report.json"));
  const std::string dir = tmp.path() + "/reports/" + e["id"].get<std::string>();
  auto growth = nlohmann::json::parse(read_file(dir + "/growth.json").value());
  EXPECT_EQ(growth["final"], true);
  EXPECT_FALSE(fs::exists(dir + "/report.json"));
  AgentCounters cnt = ag->counters();
  const std::string target = "pid:" + std::to_string(child.pid());
  EXPECT_EQ((cnt.investigations[{target, "stopped"}]), 1u);
  EXPECT_EQ((cnt.growth_steps[{target, "stopped"}]), 1u);
  EXPECT_EQ(cnt.reports_stored, 1u);
}

}  // namespace
}  // namespace leakwatch::agent
