// The memory regions a process mapped while traced, as disjoint intervals, each tagged with
// the stack that created it.  Fed the mmap/munmap/mremap/brk events in order; partial
// unmaps split regions, mremap moves them (the moved bytes keep their stack, growth goes to
// the mremap call's stack), a mapping over a tracked range replaces what was there.
//
//   by_start_:  [a0 ........ a1)   [b0 .. b1)        [c0 ............. c1)
//               stack S1, anon      stack S2, file     stack S3, anon, brk
//
// Ranges leakwatch never saw being mapped (before attach) are not tracked: unmapping them
// changes nothing.  Addresses are page-rounded as the kernel rounds them.
//
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "bpf/growth.h"

namespace leakwatch::tracker {

struct Region {
  uint64_t end = 0;      // exclusive
  uint64_t stack = LW_GR_NO_STACK;
  bool anon = true;      // anonymous (private or shared) vs file-backed
  bool shared = false;   // MAP_SHARED: a write does not make an anonymous copy
  bool brk = false;      // part of the program break
};

class RegionMap {
 public:
  explicit RegionMap(uint64_t page_size = 4096) : page_(page_size) {}

  // Applies one event of this process (lw_gr_event from the growth probe).
  void apply(const lw_gr_event& e);

  // Primitive operations (also used by apply; addresses already page-aligned).
  void insert(uint64_t start, const Region& r);   // replaces any overlap
  // Removes [start, end) and returns the removed pieces, clipped, in address order.
  std::vector<std::pair<uint64_t, Region>> remove(uint64_t start, uint64_t end);

  // The region holding `addr`, or nullptr.
  const Region* find(uint64_t addr) const;

  void for_each(const std::function<void(uint64_t start, const Region&)>& fn) const;
  size_t size() const { return by_start_.size(); }
  uint64_t bytes() const;  // total tracked bytes

 private:
  uint64_t round_up(uint64_t v) const { return (v + page_ - 1) / page_ * page_; }
  uint64_t round_down(uint64_t v) const { return v / page_ * page_; }
  void apply_mremap(const lw_gr_event& e);

  uint64_t page_;
  std::map<uint64_t, Region> by_start_;
};

}  // namespace leakwatch::tracker
