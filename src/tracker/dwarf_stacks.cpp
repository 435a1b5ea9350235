#include "tracker/dwarf_stacks.h"

#include <chrono>

#include "common/log.h"

namespace leakwatch::tracker {

unwind::DwarfUnwinder* DwarfStacks::unwinder_for(uint32_t tgid) {
  auto it = unwinders_.find(tgid);
  if (it != unwinders_.end()) return it->second.get();
  auto u = unwind::DwarfUnwinder::Create(static_cast<int>(tgid));
  if (!u) {
    log::debug("no unwinder for pid {}: {}", tgid, u.error().message);
    unwinders_.emplace(tgid, nullptr);
    return nullptr;
  }
  return unwinders_.emplace(tgid, std::move(*u)).first->second.get();
}

std::optional<unwind::UnwoundStack> DwarfStacks::unwind(const lw_stack_snapshot& snap) {
  stats_.snapshots++;
  unwind::DwarfUnwinder* u = unwinder_for(snap.tgid);
  if (!u) {
    stats_.failed++;
    return std::nullopt;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = u->unwind(snap);
  stats_.unwind_ns += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  if (!r) {
    stats_.failed++;
    return std::nullopt;
  }
  stats_.unwound++;
  if (r->truncated) stats_.truncated++;
  return std::move(*r);
}

void DwarfStacks::consume(const lw_stack_snapshot& snap) {
  if (auto r = unwind(snap)) by_alloc_[{snap.tgid, snap.alloc_addr}] = r->stack_id;
}

uint32_t DwarfStacks::stack_of(uint32_t tgid, uint64_t addr) const {
  auto it = by_alloc_.find({tgid, addr});
  return it == by_alloc_.end() ? 0 : it->second;
}

DwarfStacks::Stack DwarfStacks::stack(uint32_t tgid, uint32_t id) const {
  Stack s;
  auto it = unwinders_.find(tgid);
  if (it == unwinders_.end() || !it->second) return s;
  if (const unwind::StackEntry* e = it->second->stack(id)) {
    s.frames = e->frames;
    s.truncated = e->truncated;
  }
  return s;
}

void DwarfStacks::retain(const std::vector<std::pair<uint32_t, uint64_t>>& outstanding) {
  std::map<std::pair<uint32_t, uint64_t>, uint32_t> kept;
  for (const auto& key : outstanding) {
    auto it = by_alloc_.find(key);
    if (it != by_alloc_.end()) kept.insert(*it);
  }
  by_alloc_.swap(kept);
}

}  // namespace leakwatch::tracker
