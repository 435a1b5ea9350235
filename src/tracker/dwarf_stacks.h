// Stacks unwound in user space from BPF stack snapshots (--unwind dwarf): one DwarfUnwinder
// per process; for the allocation trace, which unwound stack each outstanding allocation
// (process, address) has.  The growth trace uses unwind() alone.
//
//   snapshot (tgid, alloc addr, regs, stack bytes)
//     -> DwarfUnwinder[tgid].unwind() -> per-process stack id (equal stacks, equal ids)
//     -> by_alloc_[(tgid, addr)] = id          (a newer snapshot for a reused address wins)
//
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "bpf/unwind.h"
#include "unwind/unwinder.h"

namespace leakwatch::tracker {

class DwarfStacks {
 public:
  // Unwinds one snapshot with its process's unwinder (made on first use), counted in
  // stats().  Empty when it cannot be (no unwinder for the process, a malformed snapshot).
  std::optional<unwind::UnwoundStack> unwind(const lw_stack_snapshot& snap);
  // Drops a process's unwinder (after an exec its maps are another program's).
  void forget(uint32_t tgid) { unwinders_.erase(tgid); }
  // unwind(), and the allocation's stack is that one.
  void consume(const lw_stack_snapshot& snap);
  // The unwound stack id of an allocation, 0 when none arrived (yet).
  uint32_t stack_of(uint32_t tgid, uint64_t addr) const;
  // Frames (innermost first) and whether the unwinding stopped early, with the reason.
  struct Stack {
    std::vector<uint64_t> frames;
    bool truncated = false;
  };
  Stack stack(uint32_t tgid, uint32_t id) const;
  // Forgets allocations that are no longer outstanding (after each report).
  void retain(const std::vector<std::pair<uint32_t, uint64_t>>& outstanding);

  struct Stats {
    uint64_t snapshots = 0, unwound = 0, truncated = 0, failed = 0, unwind_ns = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  unwind::DwarfUnwinder* unwinder_for(uint32_t tgid);
  std::map<uint32_t, std::unique_ptr<unwind::DwarfUnwinder>> unwinders_;
  std::map<std::pair<uint32_t, uint64_t>, uint32_t> by_alloc_;
  Stats stats_;
};

}  // namespace leakwatch::tracker
