// Merges equal stacks: each distinct (frames, truncated) gets one id, so callers can key
// per-stack data on a small integer and keep the frames once.
//
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace leakwatch::unwind {

struct StackEntry {
  std::vector<uint64_t> frames;  // innermost first
  bool truncated = false;
};

class StackTable {
 public:
  // The id of this stack (1, 2, ... in order of first appearance); 0 is never used.
  uint32_t intern(const std::vector<uint64_t>& frames, bool truncated);
  // The stack with this id, or nullptr.
  const StackEntry* get(uint32_t id) const;
  size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<std::string, uint32_t> ids_;  // key: frame bytes + truncated flag
  std::vector<StackEntry> entries_;                // entries_[id - 1]
};

}  // namespace leakwatch::unwind
