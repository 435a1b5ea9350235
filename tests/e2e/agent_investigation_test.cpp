// The agent end to end with the real layer-3 investigator: a leaking process triggers an
// investigation whose stored report names the leaking function.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;

TEST(AgentInvestigation, LeakingProcessGetsAStoredReportNamingTheLeak) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  // 2 MiB/s of anonymous memory through mmap from touch_anon(): far above the trigger.
  Proc grower({fixture("agent_grower"), "leak", "2048"});
  ASSERT_TRUE(grower.wait_for("ready"));

  std::string dir = temp_path("agent");
  fs::create_directories(dir);
  std::string reports = dir + "/reports";
  std::string config = dir + "/agent.yaml";
  std::ofstream(config) << "reports_dir: " << reports << "\n"
                        << "environment: ci\nlisten: \"off\"\n"
                        << "targets:\n  - pid: " << grower.pid() << "\n"
                        << "memleak_sampling:\n  enabled: true\n"
                        << "  trigger_conditions:\n    - memory_growth_rate: \">10MB/min\"\n"
                        << "  sampling_config:\n    default_sample_rate: 1\n    duration_limit: 4\n"
                        << "detection:\n  interval: 200ms\n  rate_window: 1s\n  sustained_for: 1s\n";

  Proc agent({leakwatch(), "agent", "--config", config});
  fs::path report_json;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (report_json.empty() && std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(reports))
      for (const auto& e : fs::recursive_directory_iterator(reports))
        if (e.path().filename() == "report.json") report_json = e.path();
    ::usleep(200 * 1000);
  }
  agent.signal(SIGTERM);
  int st = agent.wait(std::chrono::seconds(20));
  ASSERT_FALSE(report_json.empty()) << "no investigation stored\n" << agent.err();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << agent.err();

  auto text = read_file(report_json.string());
  ASSERT_TRUE(text);
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(rep->target.pid, grower.pid());
  auto leak = stacks_in(*rep, "touch_anon");
  ASSERT_FALSE(leak.empty()) << describe(*rep);
  EXPECT_GT(totals_in(*rep, "touch_anon").bytes, 1024.0 * 1024) << describe(*rep);
}

}  // namespace
}  // namespace leakwatch::testing
