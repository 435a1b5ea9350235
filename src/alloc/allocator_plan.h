// Which functions of which objects leakwatch memleak probes, and where in each function.
//
//   target pid / command
//     -> objects in the dynamic linker's symbol-search order (alloc/link_order.h)
//     -> every allocator entry point (alloc/allocator_catalog.h) bound the way the dynamic
//        linker binds it: to the FIRST object in that order that exports it.  So with
//        jemalloc preloaded, malloc/free/operator new bind to libjemalloc while glibc's
//        copies are never called and are not probed; functions jemalloc does not define
//        (reallocarray, pvalloc, mmap) still bind to glibc and are probed there.
//        The executable also binds its own calls to functions it defines without
//        exporting them (a static allocator), and then the exported copy is probed too;
//        a statically linked executable has only itself.
//     -> prefixed APIs found on the way (je_malloc next to je_mallctl, tc_*, mi_*)
//     -> per object: the functions, each with its file offset and probe placement;
//        aliases (same address) are probed once, and a function that only tail-jumps to
//        another probed function (libstdc++'s operator delete -> free@plt) is left to it.
//   -O OBJ: exactly these objects, every known function they define (no search order).
//   --symbols-prefix P: the allocation API is P-prefixed (P + malloc, ... ) instead of the
//     standard names; mmap and operator new/delete are still bound as usual.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/memleak.h"
#include "common/result.h"
#include "alloc/link_order.h"
#include "alloc/placement.h"

namespace leakwatch::alloc {

struct ProbeSite {
  std::string function;        // symbol name as found (e.g. "malloc", "_Znwm")
  lw_fn_kind kind = LW_FN_NONE;
  uint64_t symbol_offset = 0;  // file offset of the function's first byte
  Placement placement;         // where inside the function the probe goes
  uint64_t file_offset() const { return symbol_offset + placement.offset; }
  std::string skipped_reason;  // non-empty: deliberately not probed (e.g. a thunk to free)
};

struct ObjectPlan {
  std::string path;            // path leakwatch opens (through /proc/PID/root when needed)
  std::string display_path;    // path as the target sees it
  uint64_t inode = 0;
  // An allocator library: mmap/munmap calls made from it are the allocator's own (see the
  // BPF side).  Never set for the executable, whose own mmap calls are the program's.
  bool defines_malloc = false;
  std::string allocator;       // "glibc", "jemalloc", ... when recognised
  std::vector<ProbeSite> sites;
};

struct PlanRequest {
  int pid = 0;                           // running target (-p); 0 with a command
  std::string command_path;              // resolved executable (-c)
  std::vector<std::string> objects;      // -O: use exactly these objects
  std::string symbols_prefix;            // --symbols-prefix (e.g. "je_")
};

// An allocator found in the target, for -v and tests.
struct FoundAllocator {
  std::string family;   // "glibc", "musl", "jemalloc", "tcmalloc", "mimalloc", "custom"
  std::string object;   // display path
  std::string prefix;   // prefix of its API when prefixed ("je_")
  std::string evidence; // the symbols that identified it
  bool in_use = false;  // some allocation entry point binds to it
};

struct AllocatorDiscovery {
  std::vector<ObjectPlan> objects;
  std::vector<FoundAllocator> allocators;
  std::vector<std::string> explanation;  // what was found and why it was chosen (-v)
  std::vector<std::string> warnings;     // printed even without -v
};

// Discovery on an explicit search order (the building block; unit-testable without a
// process).  `explicit_objects`: -O semantics (every listed object, no binding order).
[[nodiscard]] Result<AllocatorDiscovery> discover_in_order(const LinkOrder& order,
                                                           const std::string& symbols_prefix,
                                                           bool explicit_objects);

// Discovery for a request: the order from the process, the command or -O.
[[nodiscard]] Result<AllocatorDiscovery> discover_allocators(const PlanRequest& req);

// discover_allocators(), with the explanation logged at info level (-v) and the warnings
// at warning level.  Fails with a one-line error when no allocator function is found.
[[nodiscard]] Result<std::vector<ObjectPlan>> plan_allocator_probes(const PlanRequest& req);

// Kind of an allocator function name (after removing the prefix), LW_FN_NONE if not one.
lw_fn_kind allocator_function_kind(const std::string& name);

}  // namespace leakwatch::alloc
