// The allocator entry points leakwatch knows, and how to recognise an allocator.
//
// Each entry maps a function name to the lw_fn_kind whose argument layout it has
// (bpf/memleak.h): e.g. jemalloc's rallocx(ptr, size, flags) is LW_FN_REALLOC (old = arg0,
// size = arg1), sdallocx(ptr, size, flags) is LW_FN_FREE (ptr = arg0).  Functions whose
// layout fits no kind are listed in unsupported_functions() with the reason, so -v can say
// what is not probed.
//
// Thread-safety: constant tables and pure functions.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/memleak.h"

namespace leakwatch::elf {
class ElfObject;
}

namespace leakwatch::alloc {


struct CatalogEntry {
  std::string_view name;
  lw_fn_kind kind;
};

struct UnsupportedEntry {
  std::string_view name;
  std::string_view why;
};

// The C allocation API (malloc ... free); also probed with a prefix (je_malloc, ...).
std::span<const CatalogEntry> c_functions();
// mmap/munmap/mremap: the program's own mappings (never prefixed).
std::span<const CatalogEntry> map_functions();
// C++ operator new/delete, every form (Itanium ABI, 64-bit size_t).
std::span<const CatalogEntry> cxx_functions();
// jemalloc's non-standard API (mallocx, rallocx, dallocx, sdallocx); prefixable.
std::span<const CatalogEntry> jemalloc_functions();
// gperftools tcmalloc's tc_* API (full and minimal).
std::span<const CatalogEntry> tcmalloc_functions();
// mimalloc's mi_* API.
std::span<const CatalogEntry> mimalloc_functions();
// Entry points that allocate or free but fit no lw_fn_kind (prefix "" or a jemalloc prefix).
std::span<const UnsupportedEntry> unsupported_functions();

// Which allocator an object contains, judged by its symbols (and its name for musl):
// "jemalloc", "tcmalloc", "mimalloc", "glibc", "musl", or "" when none is recognised.
// `prefix` is the jemalloc symbol prefix when its API is prefixed ("je_" for je_mallctl).
struct AllocatorIdentity {
  std::string family;
  std::string prefix;
  std::string evidence;  // the symbol(s) or name that told
};
AllocatorIdentity identify_allocator(const elf::ElfObject& elf, const std::string& path, bool executable);

// Every jemalloc prefix an object exports (a function `<p>mallctl` next to `<p>malloc`),
// "" for an unprefixed build.  An executable also counts its non-exported global symbols.
std::vector<std::string> jemalloc_prefixes(const elf::ElfObject& elf, bool executable);

}  // namespace leakwatch::alloc
