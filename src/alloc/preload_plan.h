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
//   leakwatch memleak -p PID, where PID already runs with the library (started by
//   `leakwatch growth -c --inprocess`, or by its service manager with LD_PRELOAD)
//     -> find_loaded_preload(PID): the same probes on the library it mapped, at the
//        sampling rate it was started with.
//
// Thread-safety: free functions; PreloadStatsReader is used by one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bpf/preload_abi.h"
#include "common/result.h"
#include "alloc/allocator_plan.h"

namespace leakwatch::alloc {

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

// mmap, mremap, munmap: the library does not wrap them; they are probed where they bind in
// every mode.
bool is_mapping_call(uint32_t kind);

// In-process mode on an allocator plan (plan_allocator_probes): the allocation functions'
// probes are replaced by the two hook probes of `library` (the program's own mapping
// calls stay probed, and the allocator objects stay listed, so that their mmap calls are
// known to be internal).
[[nodiscard]] Result<void> use_preload_hooks(std::vector<ObjectPlan>& objects,
                                             const std::string& library);

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

// The sampling library as a running process has it loaded.
struct LoadedPreload {
  std::string path;          // where leakwatch opens it (through /proc/PID/root)
  std::string mapped_path;   // the path in the process's maps
  leakwatch_preload_stats stats{};  // as read now (magic set: initialised)
  std::optional<PreloadStatsReader> reader;  // reads them again later
  // Sampling: configured (not pass-through, its sampled set mapped).
  bool active() const {
    return (stats.flags & LW_PRELOAD_F_ACTIVE) &&
           !(stats.flags & (LW_PRELOAD_F_DISABLED | LW_PRELOAD_F_NO_SET));
  }
};

// The library loaded in process `pid` (a mapping of a file named
// libleakwatch-preload.so), with its counters; nullopt when it has none, or has not
// initialised it yet.  An error when it is mapped but cannot be read.
[[nodiscard]] Result<std::optional<LoadedPreload>> find_loaded_preload(int pid);

}  // namespace leakwatch::alloc
