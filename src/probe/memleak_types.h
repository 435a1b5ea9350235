// Plain data read from the memleak BPF maps, shared by the probe (which reads them) and the
// tracker (which turns them into reports) without the tracker depending on libbpf.
#pragma once

#include <array>
#include <cstdint>

#include "bpf/memleak.h"

namespace leakwatch::probe {

enum class SampleMode : uint32_t { kExact = 0, kCalls = 1, kBytes = 2 };

struct OutstandingAlloc {
  uint64_t address = 0;
  uint32_t tgid = 0;
  uint64_t size = 0;
  uint64_t timestamp_ns = 0;  // CLOCK_MONOTONIC
  int32_t stack_id = -1;
  uint32_t kind = 0;
};

struct CombinedEntry {
  uint32_t tgid = 0;
  int32_t stack_id = -1;
  uint64_t total_size = 0;
  uint64_t count = 0;
};

using Counters = std::array<uint64_t, LW_CNT_MAX>;

}  // namespace leakwatch::probe
