// The recent layer-1 figures of one watched process, kept for the report of an
// investigation: its memory before the trigger and while it was investigated (the agent
// keeps sampling the process meanwhile).  Bounded: the last kCapacity samples.
//
// Thread-safety: add() on the agent's loop thread and series() on an investigation's thread
// may run at once (a mutex).
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

namespace leakwatch::agent {

// What investigation.json stores as "memory" (and the agent's pages draw).
struct MemorySeries {
  int64_t trigger_unix_ms = 0;     // when the investigation was decided
  std::vector<int64_t> t_unix_ms;
  std::vector<double> anon_bytes;  // anonymous + swap: the leak signal
  std::vector<double> rss_bytes;

  bool operator==(const MemorySeries&) const = default;
};

class MemoryTrail {
 public:
  // Samples kept: 40 min at the default 10 s interval, 5 min at 1 s; about 5 KiB.
  static constexpr size_t kCapacity = 300;

  void add(int64_t unix_ms, double anon_bytes, double rss_bytes);
  // Every sample kept, oldest first, with the trigger time.
  MemorySeries series(int64_t trigger_unix_ms) const;

 private:
  struct Sample {
    int64_t unix_ms;
    float anon;  // float: 24 bits of mantissa are ample for a sparkline, and half the size
    float rss;
  };
  mutable std::mutex mu_;
  std::deque<Sample> samples_;
};

}  // namespace leakwatch::agent
