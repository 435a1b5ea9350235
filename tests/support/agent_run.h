// Running `leakwatch agent` in the end-to-end tests: a configuration that investigates a
// growing process quickly, and the wait for its first stored investigation.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace leakwatch::testing {

// Writes dir/agent.yaml: `pid` watched every 200 ms, an investigation once it grows faster
// than 10 MB/min for 1 s (a 2 s growth step, then the allocation trace for the rest of
// `duration_s`, every call traced), reports in dir/reports, HTTP on `listen` ("off" for
// none).  Returns the file's path.
std::string write_agent_config(const std::string& dir, int pid, const std::string& listen,
                               int duration_s);

// index.json's array under `reports` once it names an investigation (an investigation enters
// it only when all its files are complete); an empty array after `timeout`.
nlohmann::json wait_for_stored(const std::string& reports, std::chrono::seconds timeout);

}  // namespace leakwatch::testing
