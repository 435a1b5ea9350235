// Shared by the tracker tests: a FrameResolver that needs no process.
#pragma once

#include <string>
#include <vector>

#include "tracker/tracker.h"

namespace leakwatch::tracker::testing {

// Frames named after the stack value: stack 7 -> one frame "fn7".
class NamingResolver : public FrameResolver {
 public:
  std::vector<report::Frame> resolve(uint32_t, const std::vector<uint64_t>& ips) override {
    std::vector<report::Frame> out;
    for (uint64_t ip : ips) {
      report::Frame f;
      f.address = ip;
      f.function = "fn" + std::to_string(ip);
      out.push_back(f);
    }
    return out;
  }
};

}  // namespace leakwatch::tracker::testing
