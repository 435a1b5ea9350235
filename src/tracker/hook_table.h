// In-process mode with sampling: the outstanding sampled blocks and their stacks, kept in
// user space from the records the preload library's hooks send through the hook ring
// (bpf/memleak.h, struct lw_hook_event).
//
//   alloc record (addr, size, time, frames) -> stack id (equal frames, equal id) and the
//                                              block, by (process, address)
//   free record (addr)                      -> the block is gone
//
// Records arrive in the order the hooks ran (one ring), and the library reports a block's
// free before the real free, so a reused address is always freed before it is allocated
// again.  A free of an unknown address is a block sampled before leakwatch attached.
//
// Thread-safety: not thread-safe; one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bpf/memleak.h"
#include "probe/memleak_types.h"

namespace leakwatch::tracker {

class HookTable {
 public:
  // At most `max_stacks` distinct stacks are kept; blocks of further stacks are kept
  // without one (counted in stacks_full).  At most `max_blocks` outstanding blocks are kept;
  // further samples are dropped (counted in table_full), as BPF's allocs map does when full.
  HookTable(size_t max_stacks, size_t max_blocks)
      : max_stacks_(max_stacks), max_blocks_(max_blocks) {}

  // One record of `len` bytes (the header and its frames).
  void consume(const lw_hook_event& e, size_t len);

  // The outstanding blocks; stack ids are table ids with `user_stack_bit` set, -1 when the
  // stack was lost.
  void append_allocs(std::vector<probe::OutstandingAlloc>& out, uint32_t user_stack_bit) const;

  // Frames of a table stack id (without the bit), innermost first; empty when unknown.
  std::vector<uint64_t> stack(uint32_t id) const;

  struct Stats {
    uint64_t allocs = 0, frees = 0;
    uint64_t unknown_frees = 0;  // blocks sampled before the trace began
    uint64_t stacks_full = 0;    // LOSS: blocks kept without their stack (max_stacks)
    uint64_t table_full = 0;     // LOSS: samples dropped, max_blocks outstanding
    uint64_t bad_records = 0;    // records too short for what they say they hold
  };
  const Stats& stats() const { return stats_; }
  size_t outstanding() const { return blocks_.size(); }

 private:
  struct Block {
    uint64_t size = 0, timestamp_ns = 0;
    int32_t stack = -1;
  };
  struct FramesHash {
    size_t operator()(const std::vector<uint64_t>& v) const;
  };
  int32_t stack_id(const uint64_t* ips, uint32_t depth);

  size_t max_stacks_, max_blocks_;
  std::map<std::pair<uint32_t, uint64_t>, Block> blocks_;  // (tgid, address)
  std::unordered_map<std::vector<uint64_t>, int32_t, FramesHash> ids_;
  std::vector<std::vector<uint64_t>> stacks_;  // by id - 1
  Stats stats_;
};

}  // namespace leakwatch::tracker
