// The agent command's signal handling, end to end with a real leaking process: SIGHUP
// reloads the configuration (a bad file is rejected and the running one kept), SIGTERM
// mid-investigation ends it with its report complete on disk and exit status 0.
// The command runs in a forked child (cli::run_agent_command, as `leakwatch agent` does)
// with a fake Investigator that traces nothing but honours the stop flag.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "../unit/agent_testing.h"
#include "cli/agent_cmd.h"
#include "common/atomic_file.h"
#include "report/json_writer.h"

namespace leakwatch::cli {
namespace {
namespace fs = std::filesystem;
using leakwatch::testing::ChildProcess;
using leakwatch::testing::fixture;

// Writes `marker` when it starts, then runs until told to stop.
class UntilStopped : public agent::Investigator {
 public:
  explicit UntilStopped(std::string marker) : marker_(std::move(marker)) {}
  Result<agent::InvestigationResult> run(const agent::InvestigationRequest& req,
                                         const std::atomic<bool>& stop) override {
    (void)write_file_atomic(marker_, std::to_string(req.pid));
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    agent::InvestigationResult r;
    r.report.target.pid = req.pid;
    r.report.target.comm = req.comm;
    r.report.final = true;
    report::StackReport s;
    report::Frame f;
    f.function = "grow_forever";
    s.frames = {f};
    s.bytes = {1, 1000, 1000, 1000};
    r.report.stacks.push_back(s);
    r.end = agent::InvestigationEnd::kStopped;
    return r;
  }

 private:
  std::string marker_;
};

std::string config_text(int pid, const std::string& reports, bool enabled) {
  return "reports_dir: " + reports +
         "\nenvironment: ci\nlisten: \"off\"\n"
         "targets:\n  - pid: " + std::to_string(pid) +
         "\nmemleak_sampling:\n  enabled: " + (enabled ? "true" : "false") +
         "\n  trigger_conditions:\n    - memory_growth_rate: \">10MB/min\"\n"
         "  sampling_config:\n    duration_limit: 60\n"
         "detection:\n  interval: 100ms\n  rate_window: 1s\n  sustained_for: 1s\n";
}

bool wait_for(const std::function<bool()>& cond, double seconds) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

TEST(AgentSignals, HupReloadsAndTermSavesTheRunningInvestigation) {
  std::string tmpl = (fs::temp_directory_path() / "lw-agent-sig-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  const std::string cfg = dir + "/leakwatch.yaml";
  const std::string marker = dir + "/started";
  ChildProcess leak({fixture("agent_grower"), "leak", "2048"});
  ASSERT_EQ(leak.read_line(), "ready");
  // Sampling off at first: the leak is watched but not investigated.
  ASSERT_TRUE(write_file_atomic(cfg, config_text(leak.pid(), dir + "/reports", false)));

  pid_t agent = ::fork();
  if (agent == 0) {
    int fd = ::open((dir + "/agent.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    AgentCommandOptions o;
    o.config_path = cfg;
    // No growth locator (its step is counted as unavailable): this test is about the
    // signals, not the tracers.
    int rc = run_agent_command(o, [&] { return std::make_unique<UntilStopped>(marker); },
                               nullptr);
    ::_exit(rc);
  }
  ASSERT_GT(agent, 0);
  auto agent_exited = [&](int* status) { return ::waitpid(agent, status, WNOHANG) == agent; };

  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE(fs::exists(marker)) << "investigated while sampling was disabled";

  // A bad file: rejected, the agent keeps running on the old configuration.
  ASSERT_TRUE(write_file_atomic(cfg, "targets:\n  - pid: nope\n"));
  ::kill(agent, SIGHUP);
  EXPECT_TRUE(wait_for([&] {
    return read_file(dir + "/agent.log").value_or("").find("reload rejected") !=
           std::string::npos;
  }, 5));
  int status = 0;
  ASSERT_FALSE(agent_exited(&status));
  std::string log = read_file(dir + "/agent.log").value_or("");
  EXPECT_NE(log.find(cfg + ":2: targets[0].pid: expected a positive integer"),
            std::string::npos)
      << log;

  // Sampling on: the growth, already sustained, starts an investigation.
  ASSERT_TRUE(write_file_atomic(cfg, config_text(leak.pid(), dir + "/reports", true)));
  ::kill(agent, SIGHUP);
  ASSERT_TRUE(wait_for([&] { return fs::exists(marker); }, 15))
      << read_file(dir + "/agent.log").value_or("");

  // SIGTERM mid-investigation: the report is saved and the agent exits cleanly.
  ::kill(agent, SIGTERM);
  ASSERT_TRUE(wait_for([&] { return agent_exited(&status); }, 10)) << "agent did not stop";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);

  auto index = nlohmann::json::parse(read_file(dir + "/reports/index.json").value());
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0]["end"], "stopped");
  EXPECT_EQ(index[0]["pid"], leak.pid());
  EXPECT_EQ(index[0]["top_function"], "grow_forever");
  const std::string rdir = dir + "/reports/" + index[0]["id"].get<std::string>();
  auto rep = report::read_json(read_file(rdir + "/report.json").value());
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_TRUE(rep->final);
  for (const char* f : {"report.txt", "profile.pb.gz", "investigation.json"})
    EXPECT_TRUE(fs::is_regular_file(rdir + "/" + f)) << f;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(AgentSignals, OnceAndExitCodes) {
  std::string tmpl = (fs::temp_directory_path() / "lw-agent-bad-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  int last_status = 0;
  auto run_child = [&](const std::string& yaml) {
    ASSERT_TRUE(write_file_atomic(dir + "/c.yaml", yaml));
    pid_t p = ::fork();
    if (p == 0) {
      int fd = ::open((dir + "/err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 2);
      int out = ::open((dir + "/out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      AgentCommandOptions o;
      o.config_path = dir + "/c.yaml";
      o.once = true;
      int rc = run_agent_command(o, nullptr, nullptr);
      std::fflush(stdout);
      ::_exit(rc);
    }
    int status = 0;
    ::waitpid(p, &status, 0);
    last_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  run_child("targets:\n  - comm: x\nenvironment: prod\n");
  EXPECT_EQ(last_status, 2);
  EXPECT_NE(read_file(dir + "/err").value_or("").find(":3: environment: expected production"),
            std::string::npos);
  run_child("targets:\n  - comm: x\n  - pid: 1073741808\n");
  EXPECT_EQ(last_status, 1);
  EXPECT_NE(read_file(dir + "/err").value_or("").find("pid:1073741808 (line 3): no such process"),
            std::string::npos)
      << read_file(dir + "/err").value_or("");
  // --once on a reachable target: one evaluation, a status line per process, exit 0.
  ChildProcess child({fixture("agent_grower"), "step"});
  ASSERT_EQ(child.read_line(), "ready");
  run_child("listen: 127.0.0.1:0\nreports_dir: " + dir + "/r\ntargets:\n  - pid: " +
            std::to_string(child.pid()) + "\n  - comm: no-such-proc-y\n");
  EXPECT_EQ(last_status, 0) << read_file(dir + "/err").value_or("");
  const std::string out = read_file(dir + "/out").value_or("");
  const std::string pid = std::to_string(child.pid());
  EXPECT_NE(out.find("[pid:" + pid + "] pid " + pid + " agent_grower: rss "), std::string::npos)
      << out;
  EXPECT_NE(out.find("faults "), std::string::npos) << out;  // two samples: rates known
  EXPECT_NE(out.find("[comm:no-such-proc-y] no process named no-such-proc-y"),
            std::string::npos)
      << out;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace leakwatch::cli
