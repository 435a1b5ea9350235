// In-process mode: what leakwatch probes in libleakwatch-preload.so (the contract is
// bpf/preload_abi.h) and how it reads the library's counters out of the target.
//
//   leakwatch memleak --inprocess -c CMD
//     -> the command runs with LD_PRELOAD=<dir of leakwatch>/libleakwatch-preload.so and
//        LEAKWATCH_SAMPLE_BYTES=R (1 in exact mode)
//     -> entry uprobes on leakwatch_hook_alloc / leakwatch_hook_free (each a 5-byte NOP: the
//        kernel turns the probe into a call, no trap), pid-filtered like every other probe
//     -> the preload's counters (sampled-set overflow, allocations before initialisation)
//        are read from the target's memory at every report, and once more at its exit.
//
// Thread-safety: free functions; PreloadStatsReader is used by one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bpf/preload_abi.h"
#include "common/result.h"
#include "probe/allocator_plan.h"

namespace leakwatch::probe {

// libleakwatch-preload.so next to the running leakwatch binary, or the path in
// $LEAKWATCH_PRELOAD_LIBRARY.  An error names where it looked.
[[nodiscard]] Result<std::string> find_preload_library();

// Whether the preload library wraps this allocation entry point (the C functions glibc
// exports and every C++ operator new/delete), so in-process mode sees its calls; an
// allocator's own API (mallocx, tc_malloc, mi_malloc, je_malloc...) it does not.
bool preload_wraps(const std::string& function);

// The two hook probe sites of `library` (kinds LW_FN_HOOK_ALLOC / LW_FN_HOOK_FREE, at
// offset 0 of each hook, which must start with the ABI's 5-byte NOP).
[[nodiscard]] Result<ObjectPlan> plan_preload_hooks(const std::string& library);

// Reads `struct leakwatch_preload_stats` from a process that mapped `library`.
class PreloadStatsReader {
 public:
  [[nodiscard]] static Result<PreloadStatsReader> Create(const std::string& library);

  // The counters as the process sees them now; nullopt while the library is not mapped
  // or not initialised yet (magic not set), or when the process is gone.
  std::optional<leakwatch_preload_stats> read(int pid);

 private:
  std::string library_;
  uint64_t inode_ = 0;
  uint64_t stats_vaddr_ = 0;   // st_value of the stats symbol
  uint64_t first_load_ = 0;    // p_vaddr of the first PT_LOAD, page-aligned
  uint64_t base_ = 0;          // load address of the library in the last process read
  int base_pid_ = 0;
};

}  // namespace leakwatch::probe
