// Pushing stored investigations' profiles to the fleet's profile stores, off the agent's
// threads:
//
//   Sinks::submit(profile) ──(never blocks: a bounded queue per sink, the oldest dropped
//        │                    when full)
//        ▼
//   one worker thread per sink: send ──ok──▶ pushed
//                                  └─fail─▶ retry after backoff x 2^(n-1) (at most 60 s,
//                                           +-20% jitter) up to max_attempts, then dropped;
//                                           a non-retryable answer (4xx, INVALID_ARGUMENT)
//                                           drops it at once
//
// Every outcome is counted (SinkStats, exported by the agent as leakwatch_sink_*).  On
// destruction a worker finishes the attempt under way, and the profiles still queued are
// dropped as "shutdown" (the agent first waits a few seconds for them: wait_idle()).
//
// Thread-safety: submit() and stats() may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "sink/profile.h"
#include "sink/sender.h"
#include "sink/sink_config.h"

namespace leakwatch::sink {

struct SinkStats {
  std::string sink;                 // SinkConfig::name()
  uint64_t pushed = 0;              // profiles the store accepted
  uint64_t attempts_failed = 0;     // attempts that failed (retried or not)
  uint64_t dropped_attempts = 0;    // given up after max_attempts
  uint64_t dropped_rejected = 0;    // refused for good by the store
  uint64_t dropped_queue_full = 0;  // pushed out of a full queue
  uint64_t dropped_shutdown = 0;    // still queued when the agent stopped
  size_t queued = 0;                // waiting now (the one in flight included)
  std::string last_error;
};

class SinkWorker {
 public:
  SinkWorker(SinkConfig config, std::unique_ptr<Sender> sender);
  ~SinkWorker();
  SinkWorker(const SinkWorker&) = delete;
  SinkWorker& operator=(const SinkWorker&) = delete;

  void submit(Profile p);
  SinkStats stats() const;
  const SinkConfig& config() const { return config_; }
  // Waits until nothing is queued or in flight; false on timeout.
  bool wait_idle(double timeout_s) const;

 private:
  void run();
  // Waits `seconds` or until stopping; false when stopping.
  bool sleep_for(double seconds);

  const SinkConfig config_;
  std::unique_ptr<Sender> sender_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  mutable std::condition_variable idle_cv_;
  std::deque<Profile> queue_;
  bool in_flight_ = false;
  bool stop_ = false;
  SinkStats stats_;
  std::mt19937_64 rng_;
  std::thread thread_;
};

class Sinks {
 public:
  // Fails when a sink's endpoint or token file is unusable (a configuration error).
  [[nodiscard]] static Result<std::unique_ptr<Sinks>> create(const std::vector<SinkConfig>& configs);

  // Every sink gets the profile, with the sink's own extra labels appended.
  void submit(const Profile& p);
  std::vector<SinkStats> stats() const;
  size_t size() const { return workers_.size(); }
  // Waits until every sink is idle (the agent's shutdown gives its last pushes this long);
  // false on timeout.
  bool wait_idle(double timeout_s) const;

 private:
  std::vector<std::unique_ptr<SinkWorker>> workers_;
};

}  // namespace leakwatch::sink
