// The kernel-mode memleak BPF object (bpf/kmemleak.bpf.c): open, size, load, attach the
// kmem (or, with percpu, the percpu) tracepoints, read the maps.
//
// Thread-safety: not thread-safe; one owner drives it.  Destroying it detaches everything.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpf/kmemleak.h"
#include "common/result.h"
#include "probe/alloc_sampling.h"
#include "probe/bpf_handles.h"
#include "probe/memleak_types.h"

struct kmemleak_bpf;

namespace leakwatch::probe {

struct KernelConfig {
  bool percpu = false;            // --percpu: the percpu allocator instead of slab and pages
  bool wa_missing_free = false;   // --wa-missing-free (BCC)
  bool batched_free = true;       // mm_page_free_batched releases pages (off: BCC's view)
  uint32_t only_tgid = 0;         // record only this process's allocations (tests); 0: all
  AllocSampling sampling;          // size range and sampling mode
  uint32_t max_allocs = 1000000;
  uint32_t max_stacks = 16384;
  bool trace = false;
  std::string btf_path;
};

struct KernelAttach {
  std::string tracepoint;  // "kmem:kmalloc"
  bool ok = false;
  std::string error;
};

struct KernelAlloc {
  uint64_t address = 0;   // pointer, or pfn for pages
  uint32_t space = 0;     // enum klw_space
  uint64_t size = 0;
  uint64_t timestamp_ns = 0;
  uint64_t stack_hash = 0;  // 0: lost
  uint32_t tgid = 0;
  uint32_t source = 0;    // enum klw_source
};

struct KernelCombined {
  uint64_t stack_hash = 0;
  uint64_t total_size = 0;
  uint64_t count = 0;
};

using KernelCounters = std::array<uint64_t, KLW_CNT_MAX>;

class KernelProbe {
 public:
  [[nodiscard]] static Result<std::unique_ptr<KernelProbe>> Create(const KernelConfig& cfg);
  ~KernelProbe();
  KernelProbe(const KernelProbe&) = delete;
  KernelProbe& operator=(const KernelProbe&) = delete;

  const std::vector<KernelAttach>& attach_results() const { return attach_results_; }
  size_t failed_attaches() const;

  [[nodiscard]] Result<std::vector<KernelAlloc>> read_allocs() const;
  [[nodiscard]] Result<std::vector<KernelCombined>> read_combined() const;
  // Frames of a stack, innermost first; empty when unknown.
  std::vector<uint64_t> read_stack(uint64_t stack_hash) const;
  KernelCounters read_counters() const;
  // -t: calls `on_event` for each traced event; waits timeout_ms at most.
  int poll_events(int timeout_ms, const std::function<void(const klw_event&)>& on_event);

 private:
  KernelProbe() = default;
  struct SkelDeleter { void operator()(kmemleak_bpf* s) const; };
  std::unique_ptr<kmemleak_bpf, SkelDeleter> skel_;
  std::vector<BpfLink> links_;
  std::unique_ptr<RingBuffer> events_;
  std::vector<KernelAttach> attach_results_;
};

const char* source_name(uint32_t source);

}  // namespace leakwatch::probe
