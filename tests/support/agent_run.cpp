#include "support/agent_run.h"

#include <unistd.h>

#include <fstream>

#include "common/atomic_file.h"

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

}  // namespace leakwatch::testing
