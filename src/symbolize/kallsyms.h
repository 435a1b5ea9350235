// Kernel symbolization from /proc/kallsyms: "ffffffff81234560 T alloc_pipe_info" and
// "ffffffffc0a01230 t ext4_fill_super\t[ext4]" lines, text symbols only, sorted once and
// searched by binary search.  An address resolves to the nearest function at or below it
// (function + offset) and its module: "[kernel]" for the kernel image, the name inside the
// brackets for a module.
//
// Addresses read as 0 when kptr_restrict hides them (not root): Load() fails then, rather
// than resolving every frame to the first symbol.
//
// Thread-safety: immutable after construction; resolve() may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace leakwatch::symbolize {

struct KernelSymbol {
  std::string function;
  uint64_t offset = 0;   // address - function start
  std::string module;    // "[kernel]" or the module's name ("ext4")
};

class Kallsyms {
 public:
  [[nodiscard]] static Result<Kallsyms> Load(const std::string& path = "/proc/kallsyms");
  // Parses kallsyms text (for tests and Load()).
  static Kallsyms Parse(std::string_view text);

  std::optional<KernelSymbol> resolve(uint64_t address) const;
  // The address range [start, end) of a function of the kernel image, up to the next
  // symbol; nullopt when it has no such function.
  std::optional<std::pair<uint64_t, uint64_t>> range(std::string_view function) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t address;
    uint32_t name;    // offset into names_
    uint32_t module;  // index into modules_ (0: the kernel image)
  };
  std::vector<Entry> entries_;
  std::string names_;  // NUL-separated
  std::vector<std::string> modules_{"[kernel]"};
};

}  // namespace leakwatch::symbolize
