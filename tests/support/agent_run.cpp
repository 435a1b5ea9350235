#include "support/agent_run.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <gtest/gtest.h>
#include <httplib.h>

#include "common/atomic_file.h"
#include "support/reliability.h"

namespace leakwatch::testing {

std::string write_agent_config(const std::string& dir, int pid, const std::string& listen,
                               int duration_s) {
  const std::string config = dir + "/agent.yaml";
  std::ofstream(config) << "reports_dir: " << dir << "/reports\n"
                        << "environment: ci\nlisten: \"" << listen << "\"\n"
                        << "targets:\n  - pid: " << pid << "\n"
                        << "memleak_sampling:\n  enabled: true\n"
                        << "  trigger_conditions:\n    - memory_growth_rate: \">10MB/min\"\n"
                        << "  sampling_config:\n    default_sample_rate: 1\n"
                        << "    duration_limit: " << duration_s << "\n    growth_seconds: 2\n"
                        << "detection:\n  interval: 200ms\n  rate_window: 1s\n  sustained_for: 1s\n";
  return config;
}

nlohmann::json wait_for_stored(const std::string& reports, std::chrono::seconds timeout) {
  nlohmann::json index = nlohmann::json::array();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (index.empty() && std::chrono::steady_clock::now() < deadline) {
    if (auto text = read_file(reports + "/index.json"))
      index = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!index.is_array()) index = nlohmann::json::array();
    if (index.empty()) ::usleep(200 * 1000);
  }
  return index;
}

double metric_sum(const std::string& text, const std::string& name) {
  double sum = -1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (!line.starts_with(name)) continue;
    if (line.size() > name.size() && line[name.size()] != ' ' && line[name.size()] != '{') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos) continue;
    sum = (sum < 0 ? 0 : sum) + std::strtod(std::string(line.substr(sp + 1)).c_str(), nullptr);
  }
  return sum;
}

std::string AgentRun::metrics() const {
  // Keeps the agent's stderr pipe drained (its log would fill it and block the agent).
  if (proc) (void)proc->read_line(std::chrono::milliseconds(0));
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2);
  c.set_read_timeout(5);
  auto res = c.Get("/metrics");
  return res && res->status == 200 ? res->body : "";
}

AgentRun start_agent(const std::string& body, const std::string& reports_dir) {
  AgentRun a;
  a.dir = temp_path("agent");
  std::filesystem::create_directories(a.dir);
  a.reports = reports_dir.empty() ? a.dir + "/reports" : reports_dir;
  a.port = free_port();
  const std::string config = a.dir + "/agent.yaml";
  std::ofstream(config) << "listen: 127.0.0.1:" << a.port << "\nreports_dir: " << a.reports
                        << "\nenvironment: ci\n" << body;
  a.proc = std::make_unique<Proc>(std::vector<std::string>{leakwatch(), "agent", "--config", config});
  EXPECT_TRUE(eventually([&] { return a.metric("leakwatch_agent_uptime_seconds") >= 0; },
                         std::chrono::seconds(30)))
      << "agent metrics never answered";
  return a;
}

std::string retriggering_config(int pid, double duration_limit_s, int max_reports) {
  return "targets:\n  - pid: " + std::to_string(pid) +
         "\nmemleak_sampling:\n  enabled: true\n  cooldown: 0\n"
         "  trigger_conditions:\n    - memory_growth_rate: \">64KB/s\"\n"
         "  sampling_config:\n    default_sample_rate: 100\n    duration_limit: " +
         std::to_string(duration_limit_s) +
         "\n    growth_seconds: 0\n"
         "detection:\n  interval: 100ms\n  rate_window: 1s\n  sustained_for: 0.5s\n"
         "reports:\n  max_count: " + std::to_string(max_reports) + "\n";
}

int stop_agent(AgentRun& a) {
  a.proc->signal(SIGTERM);
  int st = a.proc->wait(std::chrono::seconds(60));
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace leakwatch::testing
