// What an allocation trace costs its target, measured by sampling it: a CPU-clock sample of
// every CPU (bpf/cost_sampler.bpf.c, ~200 Hz) that finds the target running records its user
// instruction pointer.  Time in a uprobe's trap shows at the probed instruction (the address
// saved when the trap entered the kernel, or the one right after it where an interrupt held
// back during the trap lands) or in the kernel's "[uprobes]" page (return probes, optimized
// hooks); everything else is the target's own work, syscalls and page faults included.
//
//   overhead = samples at the probes / samples of its own work
//
// A ratio of two counts of the same clock: unlike the calibrated estimate (trap cost x hits,
// subtracted from the CPU time), it stays well conditioned when the probes take nearly all
// of the target's CPU, where the work is a small remainder of two large numbers.  The
// kernel's tick-based user/system split cannot replace it: it charges most of a trap to user
// time (measured here: a traced loop whose work was 2% of its CPU showed 19% user time).
//
// Cost: one perf event per CPU; the program runs at every CPU's sample (~200 Hz each) and
// returns at once for other processes.  What a sample costs is the timer interrupt: on a
// PVM guest ~20 µs of the interrupted CPU, so at 997 Hz the sampling alone cost a busy
// target ~2-4% of its CPU (bench/run.sh, lw-inject512k against lw-inject512k-q); at 199 Hz
// it is within the noise of a 1% measurement.  (Per-thread events of the target would cost
// nothing while it sleeps, but miss threads it starts later.)
//
// Thread-safety: one owner.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/procfs.h"
#include "common/result.h"
#include "probe/bpf_handles.h"

struct cost_sampler_bpf;

namespace leakwatch::probe {

// A probed instruction: the object (by inode: the target may map it by another path, e.g.
// /usr/lib for /lib) and the file offset.
struct ProbeSite {
  uint64_t inode = 0;
  uint64_t offset = 0;
};
// The probe sites of a trace of `pid`: its attached probes' objects looked up by inode
// (through /proc/PID/root).
struct AttachResult;
std::vector<ProbeSite> probe_sites(int pid, const std::vector<AttachResult>& attached);

// The kernel functions through which a trap of a uprobe runs (x86-64): the breakpoint and
// single-step exceptions, the uprobe system calls of return probes and optimized probes,
// and the handlers.  A kernel missing some has the others.
inline constexpr const char* kTrapFunctions[] = {
    "asm_exc_int3",          "asm_exc_debug",     "exc_int3",
    "__x64_sys_uretprobe",   "__x64_sys_uprobe",  "uprobe_notify_resume",
    "uprobe_handle_trampoline", "handle_swbp",
};
inline constexpr size_t kMaxTrapRanges = 16;

// Bytes after a probed instruction that still count as the probe: the trap returns to the
// next instruction (an emulated one) or to the one it ran out of line, and a held-back
// interrupt lands there.  An instruction is at most 15 bytes.
inline constexpr uint64_t kProbeSiteBytes = 16;

struct CostSplit {
  uint64_t at_probes = 0;   // samples in a probe's trap or right after it
  uint64_t work = 0;        // samples of the target's own code (and its syscalls)
  uint64_t work_elsewhere = 0;  // of those, outside the objects holding probes (the allocator's)
  uint64_t unmapped = 0;    // addresses in no mapping any more (an unmapped library): work
  uint64_t dropped = 0;     // samples the BPF map had no room to sort (counted, unsorted)
  uint64_t total() const { return at_probes + work + unmapped + dropped; }
};

// A sampled address with this bit set was taken in the kernel during a probe's trap (a
// breakpoint or single step, or a probe's system call); the rest is the user address.
inline constexpr uint64_t kSampleInTrap = 1ull << 63;

// The share of samples in the objects holding `sites` (the allocator's, e.g. libc): of a
// baseline taken before the probes, what the allocator's code costs the untraced target;
// nullopt with fewer than `min_samples` samples.
std::optional<double> share_in_probed_objects(const std::vector<std::pair<uint64_t, uint64_t>>& samples,
                                              const std::vector<MapEntry>& maps,
                                              const std::vector<ProbeSite>& sites,
                                              uint64_t min_samples);

// Sorts sampled addresses (address -> samples) with the target's maps: pure, for tests.
// A sample in a trap is the probes'; so is one at a probed instruction, in "[uprobes]", or
// at an address a trap was seen at (`trap_sites`, virtual addresses, added to from
// `samples`: a return probe's trap shows the caller's return address, where a held-back
// interrupt lands once the trap is over).
CostSplit classify_samples(const std::vector<std::pair<uint64_t, uint64_t>>& samples,
                           const std::vector<MapEntry>& maps, const std::vector<ProbeSite>& sites,
                           std::set<uint64_t>& trap_sites);

class CostSampler {
 public:
  // Samples `pid` (every thread) `hz` times a second of its CPU time.  `trap_ranges`: the
  // kernel functions ([start, end), at most kMaxTrapRanges) a sample's kernel stack passes
  // through when it is in a probe's trap (kernel_trap_functions(), located by the caller).
  // Fails where perf events or the BPF program cannot be used (no CAP_PERFMON, no software
  // clock event) or no range is given.
  [[nodiscard]] static Result<std::unique_ptr<CostSampler>> Create(
      int pid, const std::vector<std::pair<uint64_t, uint64_t>>& trap_ranges, int hz = 199,
      const std::string& btf_path = {});
  ~CostSampler();
  CostSampler(const CostSampler&) = delete;
  CostSampler& operator=(const CostSampler&) = delete;

  // Every sample since the start (or the last drain()): those taken since the last read are
  // sorted with the target's maps read now and added to the earlier ones.
  [[nodiscard]] Result<CostSplit> read(const std::vector<ProbeSite>& sites);
  // The samples taken since the last read or drain, unsorted (address -> samples): a
  // baseline taken before the probes are attached.
  [[nodiscard]] Result<std::vector<std::pair<uint64_t, uint64_t>>> drain();
  int pid() const { return pid_; }

 private:
  CostSampler() = default;
  struct SkelDeleter { void operator()(cost_sampler_bpf* s) const; };
  int pid_ = 0;
  std::unique_ptr<cost_sampler_bpf, SkelDeleter> skel_;
  std::vector<BpfLink> links_;  // one per CPU's perf event (the link owns nothing else)
  std::vector<UniqueFd> event_fds_;
  CostSplit total_;
  std::set<uint64_t> trap_sites_;
};

}  // namespace leakwatch::probe
