// Plain data read from the growth BPF maps, shared by the probe (which reads them) and the
// growth tracker (which turns them into reports) without the tracker depending on libbpf.
#pragma once

#include <array>
#include <cstdint>

#include "bpf/growth.h"

namespace leakwatch::probe {

enum class StackWalker : uint32_t { kKernel = LW_GR_WALK_KERNEL, kFramePointers = LW_GR_WALK_FP };

struct RssEntry {
  uint32_t tgid = 0;
  lw_gr_rss rss{};
};

using GrowthCounters = std::array<uint64_t, LW_GR_CNT_MAX>;

}  // namespace leakwatch::probe
