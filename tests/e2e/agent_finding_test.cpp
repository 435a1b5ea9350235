// The agent's conclusion on services it was not told about: deploy/leakwatch.example.yaml
// (the documented configuration) with only its target, directories and time scales
// changed for a test, run unassisted on two services shaped like common production leaks:
//
//   svc_cache_leak   a 32 MiB warm-up cache, then a 64 KiB block leaked ten times a second
//   svc_small_leak   millions of small allocations a second, one 256-byte record kept in
//                    500 requests (through std::make_unique and a growing std::vector)
//
// Each stored investigation's finding must name the leaking function (not the cache, not
// the allocator) in investigation.json, index.json, report.txt's first line, the API and
// the Prometheus series.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/atomic_file.h"
#include "support/agent_run.h"
#include "support/process.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct Investigated {
  json entry;          // index.json's entry
  json investigation;  // investigation.json
  std::string report_txt;
  std::string metrics;  // /metrics after the report was stored
  std::string api;      // /api/reports/<id>
  std::string agent_log;
};

// The example configuration, time scales shortened: a 1 s detection interval with windows
// of a few seconds, and a 24 s time box whose first 6 s are the growth step.
std::string example_config(const std::string& dir, int pid, int port) {
  YAML::Node c = YAML::LoadFile(std::string(LEAKWATCH_SOURCE_DIR) + "/deploy/leakwatch.example.yaml");
  c["listen"] = "127.0.0.1:" + std::to_string(port);
  c["reports_dir"] = dir + "/reports";
  YAML::Node target;
  target["pid"] = pid;
  c["targets"] = YAML::Node(YAML::NodeType::Sequence);
  c["targets"].push_back(target);
  c["memleak_sampling"]["sampling_config"]["duration_limit"] = 24;
  c["memleak_sampling"]["sampling_config"]["growth_seconds"] = 6;
  c["detection"]["interval"] = "1s";
  c["detection"]["rate_window"] = "3s";
  c["detection"]["sustained_for"] = "2s";
  c["detection"]["baseline_window"] = "60s";
  YAML::Emitter out;
  out << c;
  const std::string path = dir + "/agent.yaml";
  std::ofstream(path) << out.c_str() << "\n";
  return path;
}

Investigated investigate(int pid) {
  Investigated r;
  const std::string dir = temp_path("agent-finding");
  fs::create_directories(dir);
  const int port = free_port();
  Proc agent({leakwatch(), "agent", "--config", example_config(dir, pid, port)});
  const std::string reports = dir + "/reports";
  json index = wait_for_stored(reports, std::chrono::seconds(90));
  if (!index.empty()) {
    r.entry = index[0];
    const std::string id = r.entry.value("id", "");
    if (auto t = read_file(reports + "/" + id + "/investigation.json")) r.investigation = json::parse(*t);
    if (auto t = read_file(reports + "/" + id + "/report.txt")) r.report_txt = *t;
    httplib::Client http("127.0.0.1", port);
    if (auto m = http.Get("/metrics")) r.metrics = m->body;
    if (auto a = http.Get("/api/reports/" + id)) r.api = a->body;
  }
  agent.signal(SIGTERM);
  const int st = agent.wait(std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << agent.err();
  r.agent_log = agent.err();
  EXPECT_FALSE(index.empty()) << "no investigation stored in 90 s\n" << r.agent_log;
  return r;
}

// The finding names `function` everywhere it is shown.
void expect_finding(const Investigated& r, const std::string& function) {
  const std::string context = r.investigation.dump(2) + "\n" + r.agent_log;
  ASSERT_TRUE(r.investigation.contains("finding") && r.investigation["finding"].is_object())
      << context;
  const json& f = r.investigation["finding"];
  EXPECT_TRUE(f.value("function", "").starts_with(function)) << context;
  EXPECT_GT(f.value("bytes", 0.0), 0) << context;
  EXPECT_FALSE(f.value("reason", "").empty()) << context;
  EXPECT_NE(f.value("alert_level", ""), "") << context;
  EXPECT_FALSE(f["seen_by"].empty()) << context;
  EXPECT_TRUE(r.entry.value("top_function", "").starts_with(function)) << r.entry.dump(2);
  EXPECT_TRUE(r.entry["finding"].is_object()) << r.entry.dump(2);
  // report.txt opens with the conclusion when the allocation trace produced a report.
  if (!r.report_txt.empty()) {
    EXPECT_TRUE(r.report_txt.starts_with("Finding: ")) << r.report_txt.substr(0, 400);
    EXPECT_NE(r.report_txt.substr(0, r.report_txt.find('\n')).find(function), std::string::npos)
        << r.report_txt.substr(0, 400);
  }
  EXPECT_NE(r.api.find("\"finding\""), std::string::npos) << r.api.substr(0, 400);
  EXPECT_NE(r.metrics.find("leakwatch_finding_info{"), std::string::npos) << r.metrics;
  EXPECT_NE(r.metrics.find("function=\"" + function), std::string::npos) << r.metrics;
  EXPECT_NE(r.agent_log.find("finding of pid"), std::string::npos) << r.agent_log;
}

void cache_then_leak(const std::string& fixture_name) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  Proc svc({fixture(fixture_name)});
  ASSERT_TRUE(svc.wait_for("ready"));
  Investigated r = investigate(svc.pid());
  ASSERT_FALSE(r.entry.is_null());
  expect_finding(r, "leak_session_buffer");
  EXPECT_EQ(r.investigation["finding"].value("function", "").find("fill_cache"), std::string::npos);
}

TEST(AgentFinding, LargeBlockLeakBehindAWarmUpCache) { cache_then_leak("svc_cache_leak"); }

TEST(AgentFinding, LargeBlockLeakBehindAWarmUpCacheWithoutFramePointers) {
  cache_then_leak("svc_cache_leak_nofp");
}

TEST(AgentFinding, AllocationHeavySmallObjectLeakWithoutFramePointers) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  Proc svc({fixture("svc_small_leak_nofp")});
  ASSERT_TRUE(svc.wait_for("ready"));
  Investigated r = investigate(svc.pid());
  ASSERT_FALSE(r.entry.is_null());
  expect_finding(r, "(anonymous namespace)::Registry::remember");
}

}  // namespace
}  // namespace leakwatch::testing
