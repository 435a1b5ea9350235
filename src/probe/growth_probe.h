// The growth BPF object: tracepoints only (page faults, mmap/munmap/mremap/brk, rss_stat).
// Open, size, load, attach every program, then read the maps and drain the event ring.
//
// Thread-safety: not thread-safe; one owner drives it.  Destroying it detaches everything.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpf/growth.h"
#include "probe/bpf_handles.h"
#include "probe/growth_types.h"
#include "common/result.h"

struct growth_bpf;

namespace leakwatch::probe {

struct GrowthProbeConfig {
  int pid = 0;                   // only this process (0: no pid filter)
  bool wait_for_exec = false;    // pid is a child held before exec: count from its exec on
  std::string cgroup_path;       // only tasks under this cgroup v2 directory ("" = no filter)
  StackWalker walker = StackWalker::kFramePointers;
  uint32_t sample_period = 1;    // capture the stack of 1 in N faults (random draw)
  bool syscall_stacks = true;    // stacks of mmap/mremap/brk calls
  bool rss = true;               // attach kmem:rss_stat
  uint32_t max_stacks = 16384;   // distinct stacks
  uint32_t ringbuf_bytes = 4u << 20;  // sampled faults and mmap-family events
  std::string btf_path;          // custom kernel BTF ("" = /sys/kernel/btf/vmlinux)
};

class GrowthProbe {
 public:
  [[nodiscard]] static Result<std::unique_ptr<GrowthProbe>> Create(const GrowthProbeConfig& cfg);
  ~GrowthProbe();
  GrowthProbe(const GrowthProbe&) = delete;
  GrowthProbe& operator=(const GrowthProbe&) = delete;

  const GrowthProbeConfig& config() const { return cfg_; }

  // Frames of a stack, innermost first; empty when unknown.
  std::vector<uint64_t> read_stack(uint64_t stack) const;
  std::vector<RssEntry> read_rss() const;
  GrowthCounters read_counters() const;

  // Calls `on_event` for each event waiting (sampled faults, mmap/munmap/mremap/brk), in
  // the order they were written.  The BPF side writes without wakeups (each would cost an
  // irq_work), so callers drain on a timer.  Returns the number consumed or a negative errno.
  int drain_events(const std::function<void(const lw_gr_event&)>& on_event);

  // Run time and count of each BPF program (needs kernel.bpf_stats_enabled=1).
  std::vector<ProgramRunStats> run_stats() const;

 private:
  GrowthProbe() = default;

  struct SkelDeleter { void operator()(growth_bpf* s) const; };
  GrowthProbeConfig cfg_;
  std::unique_ptr<growth_bpf, SkelDeleter> skel_;
  std::vector<BpfLink> links_;
  std::unique_ptr<RingBuffer> events_;
};

}  // namespace leakwatch::probe
