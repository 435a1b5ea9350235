#include "tracker/hook_table.h"

#include <cstddef>

namespace leakwatch::tracker {

static_assert(sizeof(lw_hook_header) == LW_HOOK_EVENT_HEADER &&
                  offsetof(lw_hook_event, ips) == LW_HOOK_EVENT_HEADER,
              "lw_hook_event layout (bpf/memleak.h)");

size_t HookTable::FramesHash::operator()(const std::vector<uint64_t>& v) const {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t ip : v) h = (h ^ ip) * 0x100000001b3ull;
  return static_cast<size_t>(h ^ (h >> 29));
}

int32_t HookTable::stack_id(const uint64_t* ips, uint32_t depth) {
  if (depth == 0) return -1;
  std::vector<uint64_t> frames(ips, ips + depth);
  if (auto it = ids_.find(frames); it != ids_.end()) return it->second;
  if (stacks_.size() >= max_stacks_) {
    stats_.stacks_full++;
    return -1;
  }
  stacks_.push_back(frames);
  int32_t id = static_cast<int32_t>(stacks_.size());  // ids start at 1
  ids_.emplace(std::move(frames), id);
  return id;
}

void HookTable::consume(const lw_hook_event& e, size_t len) {
  if (len < LW_HOOK_EVENT_HEADER) {
    stats_.bad_records++;
    return;
  }
  const auto key = std::make_pair(e.h.tgid, e.h.addr);
  if (e.h.type == LW_HOOK_EV_FREE) {
    stats_.frees++;
    if (blocks_.erase(key) == 0) stats_.unknown_frees++;
    return;
  }
  if (e.h.type != LW_HOOK_EV_ALLOC) {
    stats_.bad_records++;
    return;
  }
  uint32_t depth = e.h.depth;
  if (depth > LW_MAX_STACK_DEPTH || len < LW_HOOK_EVENT_HEADER + size_t{depth} * 8) {
    stats_.bad_records++;
    depth = 0;
  }
  stats_.allocs++;
  auto it = blocks_.find(key);
  if (it == blocks_.end() && blocks_.size() >= max_blocks_) {
    stats_.table_full++;
    return;
  }
  Block b{e.h.size, e.h.ts, stack_id(reinterpret_cast<const uint64_t*>(e.ips), depth)};
  if (it == blocks_.end()) blocks_.emplace(key, b);
  else it->second = b;
}

void HookTable::append_allocs(std::vector<probe::OutstandingAlloc>& out,
                              uint32_t user_stack_bit) const {
  out.reserve(out.size() + blocks_.size());
  for (const auto& [key, b] : blocks_) {
    probe::OutstandingAlloc a;
    a.tgid = key.first;
    a.address = key.second;
    a.size = b.size;
    a.timestamp_ns = b.timestamp_ns;
    a.stack_id = b.stack > 0 ? static_cast<int32_t>(static_cast<uint32_t>(b.stack) | user_stack_bit)
                             : -1;
    a.kind = LW_FN_HOOK_ALLOC;
    out.push_back(a);
  }
}

std::vector<uint64_t> HookTable::stack(uint32_t id) const {
  if (id == 0 || id > stacks_.size()) return {};
  return stacks_[id - 1];
}

}  // namespace leakwatch::tracker
