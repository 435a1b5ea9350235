#include "tracker/growth_regions.h"

#include <algorithm>

namespace leakwatch::tracker {
namespace {

// mmap(2) / mremap(2) flags and protections (kernel ABI).
constexpr uint32_t kProtNone = 0;
constexpr uint32_t kMapShared = 0x01;
constexpr uint32_t kMapAnonymous = 0x20;
constexpr uint32_t kMremapDontUnmap = 4;

}  // namespace

void RegionMap::insert(uint64_t start, const Region& r) {
  if (r.end <= start) return;
  remove(start, r.end);
  by_start_[start] = r;
}

std::vector<std::pair<uint64_t, Region>> RegionMap::remove(uint64_t start, uint64_t end) {
  std::vector<std::pair<uint64_t, Region>> removed;
  if (end <= start) return removed;
  // The first region that may overlap: the last one starting at or before `start`.
  auto it = by_start_.upper_bound(start);
  if (it != by_start_.begin()) --it;
  while (it != by_start_.end() && it->first < end) {
    uint64_t s = it->first;
    Region r = it->second;
    if (r.end <= start) {
      ++it;
      continue;
    }
    it = by_start_.erase(it);
    // Keep what lies outside [start, end).
    if (s < start) {
      Region left = r;
      left.end = start;
      by_start_[s] = left;
    }
    if (r.end > end) {
      by_start_[end] = r;
      it = by_start_.find(end);
      ++it;
    }
    Region piece = r;
    piece.end = std::min(r.end, end);
    removed.emplace_back(std::max(s, start), piece);
  }
  return removed;
}

void RegionMap::apply(const lw_gr_event& e) {
  switch (e.type) {
    case LW_GR_EV_MMAP: {
      uint64_t start = round_down(e.addr);
      uint64_t end = round_up(e.addr + e.len);
      // The kernel never maps over a live mapping unless told to (MAP_FIXED); whatever we
      // still track there is stale or replaced either way.
      remove(start, end);
      if (e.prot == kProtNone) return;  // a reservation, not memory (yet)
      bool anon = (e.flags & kMapAnonymous) != 0 || e.fd < 0;
      insert(start, Region{end, e.stack, anon, (e.flags & kMapShared) != 0, false});
      return;
    }
    case LW_GR_EV_MUNMAP:
      remove(round_down(e.addr), round_up(e.addr + e.len));
      return;
    case LW_GR_EV_MREMAP:
      apply_mremap(e);
      return;
    case LW_GR_EV_BRK: {
      uint64_t before = round_up(e.old_addr);
      uint64_t after = round_up(e.addr);
      if (after > before)
        insert(before, Region{after, e.stack, true, false, true});
      else if (after < before)
        remove(after, before);
      return;
    }
    default:
      return;
  }
}

void RegionMap::apply_mremap(const lw_gr_event& e) {
  uint64_t old_start = round_down(e.old_addr);
  uint64_t old_len = round_up(e.old_len);
  uint64_t new_start = round_down(e.addr);
  uint64_t new_len = round_up(e.len);

  // Kind of the grown part: that of the tracked piece it extends, anonymous when untracked.
  Region grown{0, e.stack, true, false, false};
  if (old_len) {
    if (const Region* r = find(old_start + old_len - 1)) {
      grown.anon = r->anon;
      grown.shared = r->shared;
    }
  }

  if (new_start == old_start) {
    if (new_len > old_len) {
      grown.end = old_start + new_len;
      insert(old_start + old_len, grown);
    } else if (new_len < old_len) {
      remove(old_start + new_len, old_start + old_len);
    }
    return;
  }

  std::vector<std::pair<uint64_t, Region>> pieces;
  if (e.flags & kMremapDontUnmap) {
    // The old range stays mapped (emptied); copy what it held.
    auto it = by_start_.upper_bound(old_start);
    if (it != by_start_.begin()) --it;
    for (; it != by_start_.end() && it->first < old_start + old_len; ++it) {
      if (it->second.end <= old_start) continue;
      Region piece = it->second;
      piece.end = std::min(piece.end, old_start + old_len);
      pieces.emplace_back(std::max(it->first, old_start), piece);
    }
  } else {
    pieces = remove(old_start, old_start + old_len);
  }
  remove(new_start, new_start + new_len);
  for (auto& [s, r] : pieces) {
    uint64_t ns = s - old_start + new_start;
    uint64_t ne = std::min(r.end - old_start + new_start, new_start + new_len);
    if (ns >= ne) continue;
    Region moved = r;
    moved.end = ne;
    moved.brk = false;
    by_start_[ns] = moved;
  }
  if (new_len > old_len) {
    grown.end = new_start + new_len;
    insert(new_start + old_len, grown);
  }
}

const Region* RegionMap::find(uint64_t addr) const {
  auto it = by_start_.upper_bound(addr);
  if (it == by_start_.begin()) return nullptr;
  --it;
  return addr < it->second.end ? &it->second : nullptr;
}

void RegionMap::for_each(const std::function<void(uint64_t, const Region&)>& fn) const {
  for (const auto& [s, r] : by_start_) fn(s, r);
}

uint64_t RegionMap::bytes() const {
  uint64_t n = 0;
  for (const auto& [s, r] : by_start_) n += r.end - s;
  return n;
}

}  // namespace leakwatch::tracker
