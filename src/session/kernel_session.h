// Kernel-mode memleak (`leakwatch memleak` without -p, -c or --cgroup), as BCC's memleak
// does it: kmalloc/kmem_cache/page allocations (or percpu ones) on the kmem and percpu
// tracepoints, kernel stacks symbolized from /proc/kallsyms, reports through the same
// Tracker as user mode.
//
// Thread-safety: one driving thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "probe/kernel_probe.h"
#include "report/model.h"
#include "session/memleak_session.h"
#include "session/trace_session.h"
#include "symbolize/kallsyms.h"
#include "tracker/tracker.h"

namespace leakwatch::session {

struct KernelMemleakOptions {
  bool percpu = false;            // --percpu: the percpu allocator instead of slab and pages
  bool wa_missing_free = false;   // --wa-missing-free
  AllocationFilter filter;
  StackReportOptions reports;
  // -t: every traced call, as it happens (called from collect()).
  std::function<void(const klw_event&)> on_trace_event;
};

class KernelMemleakSession : public TraceSession {
 public:
  [[nodiscard]] static Result<std::unique_ptr<KernelMemleakSession>> Create(
      const KernelMemleakOptions& options);

  Result<void> start() override;
  void collect() override;
  int collect_every_ms() const override { return o_.on_trace_event ? 100 : 1000; }
  void stop() override;
  int target_pid() const override { return 0; }

  report::Report report(bool final_report);
  const std::vector<probe::KernelAttach>& attach_results() const { return probe_->attach_results(); }

 private:
  explicit KernelMemleakSession(const KernelMemleakOptions& o) : o_(o) {}
  Result<void> setup();
  int32_t id_for(uint64_t stack_hash);

  KernelMemleakOptions o_;
  std::unique_ptr<probe::KernelProbe> probe_;
  std::optional<symbolize::Kallsyms> ksyms_;
  std::unique_ptr<tracker::FrameResolver> resolver_;
  std::unique_ptr<tracker::Tracker> tracker_;
  // The Tracker keys stacks by a 32-bit id; kernel stacks are kept by a 64-bit hash.
  std::unordered_map<uint64_t, int32_t> id_of_hash_;
  std::vector<uint64_t> hash_of_id_;
  uint64_t start_ns_ = 0;
};

}  // namespace leakwatch::session
