#include "agent/memory_trail.h"

namespace leakwatch::agent {

void MemoryTrail::add(int64_t unix_ms, double anon_bytes, double rss_bytes) {
  std::lock_guard lock(mu_);
  if (!samples_.empty() && unix_ms <= samples_.back().unix_ms) return;
  samples_.push_back({unix_ms, static_cast<float>(anon_bytes), static_cast<float>(rss_bytes)});
  if (samples_.size() > kCapacity) samples_.pop_front();
}

MemorySeries MemoryTrail::series(int64_t trigger_unix_ms) const {
  std::lock_guard lock(mu_);
  MemorySeries out;
  out.trigger_unix_ms = trigger_unix_ms;
  for (const Sample& s : samples_) {
    out.t_unix_ms.push_back(s.unix_ms);
    out.anon_bytes.push_back(s.anon);
    out.rss_bytes.push_back(s.rss);
  }
  return out;
}

}  // namespace leakwatch::agent
