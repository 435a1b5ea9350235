// The memleak BPF object: open, size, load, attach (session or classic uprobes), read.
//
// Thread-safety: not thread-safe; one owner drives it.  Destroying it detaches everything.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpf/memleak.h"
#include "bpf/unwind.h"
#include "common/fd.h"
#include "common/result.h"
#include "alloc/allocator_plan.h"
#include "probe/alloc_sampling.h"
#include "probe/bpf_handles.h"
#include "probe/memleak_types.h"

struct memleak_bpf;

namespace leakwatch::probe {

enum class AttachMode { kAuto, kSession, kClassic };

struct MemleakConfig {
  int pid = 0;                     // pid filter for the links (the -c child before exec too)
  std::vector<alloc::ObjectPlan> objects; // what to attach (alloc::plan_allocator_probes)
  AllocSampling sampling;          // size range and sampling mode
  uint32_t max_allocs = 1000000;   // allocs map capacity
  uint32_t max_stacks = 16384;     // stack map capacity (also per-stack totals)
  bool trace = false;              // -t: stream events through the ring buffer
  bool combined = false;           // --combined-only: keep per-stack totals in BPF
  AttachMode attach_mode = AttachMode::kAuto;
  std::string btf_path;            // custom kernel BTF ("" = /sys/kernel/btf/vmlinux)
  std::string cgroup_path;         // --cgroup: trace tasks under this cgroup v2 (pid = 0)
  bool inprocess = false;          // objects include the preload hooks (alloc/preload_plan.h)
  // In-process with sampling: the hooks send their samples and frees as lw_hook_event
  // records (poll_hook_events) instead of keeping them in the allocs and stack maps; user
  // space keeps them (tracker/hook_table.h).
  bool hook_ring = false;
  uint32_t hook_ring_bytes = 4u << 20;
  bool unwind_dwarf = false;       // send stack snapshots of recorded allocations
  uint32_t snapshot_size = 8192;   // bytes of user stack per snapshot (<= LW_SNAPSHOT_MAX)
  // Small enough to stay in the CPU caches: with a 64 MiB ring every snapshot landed in cold
  // memory and cost the traced thread ~15 us instead of ~2.5 us (8 KiB snapshots, measured
  // with bpf_stats); user space drains it every 10 ms.
  uint32_t snapshot_ring_bytes = 8u << 20;
  // Fault injection for tests (LEAKWATCH_TEST_ATTACH_PAUSE_US): a pause after each probe is
  // attached, which widens the time in which some functions are probed and others not.
  uint32_t attach_pause_us = 0;
};

struct AttachResult {
  std::string object;   // display path
  std::string function;
  uint64_t offset = 0;  // file offset probed
  bool emulated = false;
  bool ok = false;
  std::string error;    // why it failed or was skipped
  bool skipped = false;
};

class MemleakProbe {
 public:
  [[nodiscard]] static Result<std::unique_ptr<MemleakProbe>> Create(const MemleakConfig& cfg);
  ~MemleakProbe();
  MemleakProbe(const MemleakProbe&) = delete;
  MemleakProbe& operator=(const MemleakProbe&) = delete;

  bool session_mode() const { return session_; }
  // Attaches objects not attached yet (by inode): used when a traced cgroup gains a
  // process that maps other libraries.  Failures are recorded in attach_results().
  Result<void> attach_objects(const std::vector<alloc::ObjectPlan>& objects);
  const std::vector<AttachResult>& attach_results() const { return attach_results_; }
  size_t failed_attaches() const;

  [[nodiscard]] Result<std::vector<OutstandingAlloc>> read_allocs() const;
  [[nodiscard]] Result<std::vector<CombinedEntry>> read_combined() const;
  // Frames of a stack, innermost first; empty when the id is unknown.
  std::vector<uint64_t> read_stack(int32_t stack_id) const;
  Counters read_counters() const;

  // -t: calls `on_event` for each traced event; returns after timeout_ms at most.
  int poll_events(int timeout_ms, const std::function<void(const lw_event&)>& on_event);

  // --unwind dwarf: calls `on_snapshot` for each stack snapshot received (its stack[] holds
  // stack_size valid bytes); returns after timeout_ms at most.
  int poll_snapshots(int timeout_ms,
                     const std::function<void(const lw_stack_snapshot&)>& on_snapshot);

  // hook_ring: calls `on_event` for each record (`len` bytes: the header and `depth`
  // frames).  Returns the number consumed; never blocks.
  int poll_hook_events(const std::function<void(const lw_hook_event&, size_t len)>& on_event);
  // A descriptor that becomes readable when the hook ring is half full (-1 without it).
  int hook_events_fd() const;

  // Summed run time and count of the BPF programs (needs kernel.bpf_stats_enabled=1).
  struct RunStats { uint64_t run_time_ns = 0, run_cnt = 0; };
  RunStats run_stats() const;

  // CLOCK_MONOTONIC time at which every probe of the initial objects was attached.
  // Allocations recorded before it may have been freed while their release function was
  // not probed yet: a trace ignores them (they would be false leaks).
  uint64_t live_since_ns() const { return live_since_ns_; }

 private:
  // Release functions are attached before any allocation function (the Phase order), so
  // a block recorded by a live allocation probe cannot be freed unseen.
  enum class Phase { kRelease, kAllocate };
  MemleakProbe() = default;
  Result<void> attach_session(const alloc::ObjectPlan& obj, int pid, Phase phase);
  Result<void> attach_classic(const alloc::ObjectPlan& obj, int pid, Phase phase);

  struct SkelDeleter { void operator()(memleak_bpf* s) const; };
  std::unique_ptr<memleak_bpf, SkelDeleter> skel_;
  std::vector<UniqueFd> link_fds_;   // raw BPF links (session / uprobe_multi)
  std::vector<BpfLink> classic_links_;
  std::unique_ptr<RingBuffer> events_;     // -t
  std::unique_ptr<RingBuffer> snapshots_;  // --unwind dwarf
  std::unique_ptr<RingBuffer> hook_events_;
  std::vector<AttachResult> attach_results_;
  uint64_t live_since_ns_ = 0;
  uint32_t attach_pause_us_ = 0;
  bool session_ = false;
  int pid_ = 0;
  std::vector<uint64_t> attached_inodes_;
  UniqueFd cgroup_fd_;
};

// Whether this kernel supports uprobe sessions (bpf_session_is_return in its BTF).
bool kernel_supports_uprobe_session();

}  // namespace leakwatch::probe
