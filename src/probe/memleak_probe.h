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
#include "probe/allocator_plan.h"

struct memleak_bpf;

namespace leakwatch::probe {

enum class AttachMode { kAuto, kSession, kClassic };
enum class SampleMode : uint32_t { kExact = 0, kCalls = 1, kBytes = 2 };

struct MemleakConfig {
  int pid = 0;                     // pid filter for the links (the -c child before exec too)
  std::vector<ObjectPlan> objects; // what to attach (plan_allocator_probes)
  uint64_t min_size = 0;
  uint64_t max_size = UINT64_MAX;
  SampleMode sample_mode = SampleMode::kExact;
  uint64_t sample_rate = 1;        // N (calls) or R bytes
  std::vector<uint32_t> exp_table; // byte sampling draws (LW_EXP_TABLE_SIZE entries)
  uint32_t max_allocs = 1000000;   // allocs map capacity
  uint32_t max_stacks = 16384;     // stack map capacity (also per-stack totals)
  bool trace = false;              // -t: stream events through the ring buffer
  bool combined = false;           // --combined-only: keep per-stack totals in BPF
  AttachMode attach_mode = AttachMode::kAuto;
  std::string btf_path;            // custom kernel BTF ("" = /sys/kernel/btf/vmlinux)
  std::string cgroup_path;         // --cgroup: trace tasks under this cgroup v2 (pid = 0)
  bool inprocess = false;          // objects include the preload hooks (probe/preload_plan.h)
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

struct OutstandingAlloc {
  uint64_t address = 0;
  uint32_t tgid = 0;
  uint64_t size = 0;
  uint64_t timestamp_ns = 0;  // CLOCK_MONOTONIC
  int32_t stack_id = -1;
  uint32_t kind = 0;
};

struct CombinedEntry {
  uint32_t tgid = 0;
  int32_t stack_id = -1;
  uint64_t total_size = 0;
  uint64_t count = 0;
};

using Counters = std::array<uint64_t, LW_CNT_MAX>;

class MemleakProbe {
 public:
  [[nodiscard]] static Result<std::unique_ptr<MemleakProbe>> Create(const MemleakConfig& cfg);
  ~MemleakProbe();
  MemleakProbe(const MemleakProbe&) = delete;
  MemleakProbe& operator=(const MemleakProbe&) = delete;

  bool session_mode() const { return session_; }
  // Attaches objects not attached yet (by inode): used when a traced cgroup gains a
  // process that maps other libraries.  Failures are recorded in attach_results().
  Result<void> attach_objects(const std::vector<ObjectPlan>& objects);
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

 private:
  MemleakProbe() = default;
  Result<void> attach_session(const ObjectPlan& obj, int pid);
  Result<void> attach_classic(const ObjectPlan& obj, int pid);

  struct SkelDeleter { void operator()(memleak_bpf* s) const; };
  std::unique_ptr<memleak_bpf, SkelDeleter> skel_;
  std::vector<int> link_fds_;        // raw BPF links (session / uprobe_multi)
  std::vector<void*> classic_links_; // struct bpf_link*
  void* ringbuf_ = nullptr;          // struct ring_buffer*
  void* snapshot_ring_ = nullptr;    // struct ring_buffer*
  void* hook_ring_ = nullptr;        // struct ring_buffer*
  std::function<void(const lw_hook_event&, size_t)> hook_cb_;
  std::function<void(const lw_stack_snapshot&)> snapshot_cb_;
  std::function<void(const lw_event&)> event_cb_;
  std::vector<AttachResult> attach_results_;
  bool session_ = false;
  int pid_ = 0;
  std::vector<uint64_t> attached_inodes_;
  UniqueFd cgroup_fd_;
};

// Whether this kernel supports uprobe sessions (bpf_session_is_return in its BTF).
bool kernel_supports_uprobe_session();

}  // namespace leakwatch::probe
