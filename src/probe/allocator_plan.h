// Which functions of which objects leakwatch memleak probes, and where in each function.
//
//   target pid / command
//     -> allocator objects: -O OBJ, else the objects mapped in the target that define
//        malloc (the executable for a static allocator, libc, ...) and the objects that
//        define C++ operator new/delete (libstdc++, or the program itself)
//     -> per object: the allocation and release functions it defines (with the optional
//        --symbols-prefix), each with its file offset and probe placement
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/memleak.h"
#include "common/result.h"
#include "probe/placement.h"

namespace leakwatch::probe {

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
  bool defines_malloc = false; // an allocator object (its own mmap calls are internal)
  std::vector<ProbeSite> sites;
};

struct PlanRequest {
  int pid = 0;                           // running target (-p); 0 with a command
  std::string command_path;              // resolved executable (-c)
  std::vector<std::string> objects;      // -O: use exactly these objects
  std::string symbols_prefix;            // --symbols-prefix (e.g. "je_")
};

// Builds the plan.  Fails with a one-line error when no allocator function is found.
[[nodiscard]] Result<std::vector<ObjectPlan>> plan_allocator_probes(const PlanRequest& req);

// Kind of an allocator function name (after removing the prefix), LW_FN_NONE if not one.
lw_fn_kind allocator_function_kind(const std::string& name);

}  // namespace leakwatch::probe
