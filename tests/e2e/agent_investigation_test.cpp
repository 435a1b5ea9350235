// The agent end to end with the real layer-2 and layer-3 tracers: a leaking process
// triggers an investigation whose stored growth report and allocation report both name the
// leaking function.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bpf/preload_abi.h"
#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/agent_run.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

bool names(const json& stack, const std::string& function) {
  for (const json& f : stack["frames"])
    if (f.value("function", "").starts_with(function)) return true;
  return false;
}

// Runs the agent on `pid` with a 6 s investigation time box (the growth step takes its
// first 2 s, the allocation trace the rest) and returns the first stored investigation's
// index entry (null when none was stored in 40 s); `reports` is where they are.
json investigate(int pid, std::string* reports_out) {
  std::string dir = temp_path("agent");
  fs::create_directories(dir);
  std::string reports = dir + "/reports";
  *reports_out = reports;
  const std::string config = write_agent_config(dir, pid, "off", 6);
  Proc agent({leakwatch(), "agent", "--config", config});
  json index = wait_for_stored(reports, std::chrono::seconds(40));
  agent.signal(SIGTERM);
  int st = agent.wait(std::chrono::seconds(20));
  EXPECT_FALSE(index.empty()) << "no investigation stored\n" << agent.err();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << agent.err();
  return index.empty() ? json() : index[0];
}

TEST(AgentInvestigation, LeakingProcessGetsStoredGrowthAndAllocationReportsNamingTheLeak) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  // 2 MiB/s of anonymous memory through mmap from touch_anon(): far above the trigger.
  // Each step maps 2048 KiB / 10 rounded up to pages and touches every page, then sleeps
  // 100 ms, so at most 10 steps a second.
  Proc grower({fixture("agent_grower"), "leak", "2048"});
  ASSERT_TRUE(grower.wait_for("ready"));
  const double step_bytes = 52 * 4096.0;  // 209715 bytes, rounded up to 4 KiB pages

  std::string reports;
  json entry = investigate(grower.pid(), &reports);
  ASSERT_FALSE(entry.is_null());
  const std::string rdir = reports + "/" + entry["id"].get<std::string>();
  for (const char* f : {"report.json", "report.txt", "profile.pb.gz", "growth.json",
                        "growth.txt", "growth.pb.gz", "investigation.json"})
    EXPECT_TRUE(fs::is_regular_file(rdir + "/" + f)) << f << "\n" << entry.dump(2);

  // Layer 2: the growth step traced 2 s and names the leaking function.
  ASSERT_TRUE(entry["growth"].is_object()) << entry.dump(2);
  EXPECT_EQ(entry["growth"]["outcome"], "duration") << entry.dump(2);
  EXPECT_EQ(entry["growth"]["top_function"], "touch_anon") << entry.dump(2);
  auto growth_text = read_file(rdir + "/growth.json");
  ASSERT_TRUE(growth_text);
  json growth = json::parse(*growth_text);
  EXPECT_EQ(growth["target"]["pid"], grower.pid());
  EXPECT_TRUE(growth["final"].get<bool>());
  const double d = growth["duration_s"].get<double>();
  EXPECT_NEAR(d, 2.0, 0.5);
  double mapped = 0, faulted = 0;
  for (const json& s : growth["stacks"]) {
    if (!names(s, "touch_anon")) continue;
    mapped += s["mapped_bytes"].get<double>();
    faulted += s["faulted_bytes"]["estimate"].get<double>();
  }
  // Mapped bytes are exact: every step of the traced window, up to 10 a second (fewer
  // when the machine is slow to wake the fixture), give or take the step in flight at
  // each end.
  const double nominal = 10 * step_bytes * d;
  EXPECT_GE(mapped, 0.5 * nominal) << growth.dump(2);
  EXPECT_LE(mapped, nominal + 2 * step_bytes) << growth.dump(2);
  // Faulted bytes are estimated from 1 in 16 fault stacks (~65 of ~1000 faults here): the
  // same pages as mapped, within 50% (several standard deviations of the estimate).
  EXPECT_NEAR(faulted, mapped, 0.5 * mapped + 2 * step_bytes) << growth.dump(2);
  auto inv = json::parse(read_file(rdir + "/investigation.json").value());
  EXPECT_DOUBLE_EQ(inv["growth"]["requested_s"].get<double>(), 2.0);
  EXPECT_LE(inv["request"]["duration_s"].get<double>(), 4.0);  // the rest of the 6 s box

  // Layer 3: the allocation trace, after it, names the same function.
  auto text = read_file(rdir + "/report.json");
  ASSERT_TRUE(text);
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(rep->target.pid, grower.pid());
  auto leak = stacks_in(*rep, "touch_anon");
  ASSERT_FALSE(leak.empty()) << describe(*rep);
  EXPECT_GT(totals_in(*rep, "touch_anon").bytes, 1024.0 * 1024) << describe(*rep);
}

// A target that runs with the sampling library (started by `leakwatch growth -c
// --inprocess`, or with LD_PRELOAD): the allocation trace probes the library's hooks, here
// in exact mode (LEAKWATCH_SAMPLE_BYTES=1), and names the function that keeps the blocks.
TEST(AgentInvestigation, TargetRunningWithTheLibraryIsTracedInProcess) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  std::string lib = (fs::path(leakwatch()).parent_path() / LEAKWATCH_PRELOAD_LIBRARY).string();
  Proc grower({"env", "LD_PRELOAD=" + lib, "LEAKWATCH_SAMPLE_BYTES=1", fixture("agent_grower"),
               "mleak", "2048"});
  ASSERT_TRUE(grower.wait_for("ready"));
  std::string reports;
  json entry = investigate(grower.pid(), &reports);
  ASSERT_FALSE(entry.is_null());
  auto text = read_file(reports + "/" + entry["id"].get<std::string>() + "/report.json");
  ASSERT_TRUE(text);
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep) << rep.error().message;
  bool in_process = false;
  for (const auto& n : rep->notes) in_process |= n.starts_with("in-process: ");
  EXPECT_TRUE(in_process) << describe(*rep);
  EXPECT_EQ(rep->sampling.mode, report::SamplingMode::kExact);
  // 16 KiB blocks at ~2 MiB/s over the trace's ~4 s: exact counts, every one from
  // keep_blocks (no stack may start inside the library).
  Totals t = totals_in(*rep, "keep_blocks");
  EXPECT_GT(t.bytes, 1024.0 * 1024) << describe(*rep);
  EXPECT_EQ(t.bytes, t.count * 16384) << describe(*rep);
  for (const auto& s : rep->stacks)
    for (const auto& f : s.frames)
      EXPECT_EQ(f.module.find("leakwatch-preload"), std::string::npos) << describe(*rep);
}

}  // namespace
}  // namespace leakwatch::testing
