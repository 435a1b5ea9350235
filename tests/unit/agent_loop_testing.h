// Helpers for the tests of the agent loop: a temporary directory, a fake Investigator,
// a configuration with time compressed (100 ms samples, 1 s windows) and a ticking loop.
// Not thread-safe except FakeLog (shared with the investigation threads under its mutex).
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"

namespace leakwatch::agent {

class TempDir {
 public:
  TempDir() {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "lw-agent-loop-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Records what it was asked and how many ran at once; returns a report naming
// "leaky_function" after run_s seconds (or when told to stop).
struct FakeLog {
  std::mutex mu;
  std::vector<InvestigationRequest> requests;
  int running = 0;
  int max_running = 0;
};

class FakeInvestigator : public Investigator {
 public:
  FakeInvestigator(FakeLog& log, double run_s) : log_(log), run_s_(run_s) {}
  Result<InvestigationResult> run(const InvestigationRequest& req,
                                  const std::atomic<bool>& stop) override {
    {
      std::lock_guard lock(log_.mu);
      log_.requests.push_back(req);
      log_.max_running = std::max(log_.max_running, ++log_.running);
    }
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(
                     static_cast<int>(std::min(run_s_, req.duration_s) * 1000));
    while (!stop && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    InvestigationResult r;
    r.report.target.pid = req.pid;
    r.report.target.comm = req.comm;
    r.report.final = true;
    report::StackReport s;
    report::Frame f;
    f.function = "leaky_function";
    f.address = 0x1234;
    s.frames = {f};
    s.bytes = {100, 100000, 90000, 110000};
    r.report.stacks.push_back(s);
    r.report.lost = {{"stack_lost", 1}};
    r.end = stop ? InvestigationEnd::kStopped : InvestigationEnd::kDuration;
    {
      std::lock_guard lock(log_.mu);
      --log_.running;
    }
    return r;
  }

 private:
  FakeLog& log_;
  double run_s_;
};

inline AgentConfig fast_config(const std::string& reports_dir) {
  AgentConfig c;
  c.listen.clear();
  c.reports_dir = reports_dir;
  c.environment = Environment::kCi;
  c.detection.interval_s = 0.1;
  c.detection.rate_window_s = 1.0;
  c.detection.sustained_for_s = 1.0;
  c.detection.baseline_window_s = 30;
  c.memleak_sampling.enabled = true;
  c.memleak_sampling.trigger_conditions.memory_growth_rate =
      Threshold{Comparison::kGreater, 10e6 / 60};  // 10 MB/min
  c.memleak_sampling.trigger_conditions.rss_increase_threshold =
      Threshold{Comparison::kGreater, 100e6};
  c.memleak_sampling.sampling_config.duration_limit_s = 0.3;
  c.memleak_sampling.sampling_config.growth_seconds = 0;  // no growth step unless asked for
  c.memleak_sampling.cooldown_s = 60;
  return c;
}

// Ticks every 100 ms until `done` or `max_s` elapse; returns whether `done` held.
template <typename Pred>
bool tick_until(Agent& a, double max_s, Pred done) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int>(max_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    a.tick();
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// The value of the first sample of `family` whose labels contain `label`.
inline std::optional<double> metric(const std::string& text, const std::string& family,
                                    const std::string& label) {
  std::regex re("^" + family + "\\{([^}]*)\\} (\\S+)$", std::regex::multiline);
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it)
    if ((*it)[1].str().find(label) != std::string::npos) return std::stod((*it)[2].str());
  return std::nullopt;
}

}  // namespace leakwatch::agent
