#include "unwind/stack_table.h"

#include <cstring>

namespace leakwatch::unwind {

uint32_t StackTable::intern(const std::vector<uint64_t>& frames, bool truncated) {
  std::string key(frames.size() * sizeof(uint64_t) + 1, '\0');
  if (!frames.empty()) std::memcpy(key.data(), frames.data(), frames.size() * sizeof(uint64_t));
  key.back() = truncated ? 1 : 0;
  auto [it, inserted] = ids_.try_emplace(std::move(key), 0);
  if (inserted) {
    entries_.push_back(StackEntry{frames, truncated});
    it->second = static_cast<uint32_t>(entries_.size());
  }
  return it->second;
}

const StackEntry* StackTable::get(uint32_t id) const {
  if (id == 0 || id > entries_.size()) return nullptr;
  return &entries_[id - 1];
}

}  // namespace leakwatch::unwind
