#include "session/kernel_session.h"

#include <fmt/format.h>

#include "analysis/sampling.h"
#include "common/clock.h"
#include "common/log.h"
#include "session/inprocess.h"

namespace leakwatch::session {
namespace {

// Frames of kernel stacks from /proc/kallsyms (the tgid is irrelevant: one kernel).
class KallsymsResolver : public tracker::FrameResolver {
 public:
  explicit KallsymsResolver(const symbolize::Kallsyms* ksyms) : ksyms_(ksyms) {}
  std::vector<report::Frame> resolve(uint32_t, const std::vector<uint64_t>& ips) override {
    std::vector<report::Frame> frames;
    for (uint64_t ip : ips) {
      report::Frame f;
      f.address = ip;
      f.module = "[kernel]";
      if (ksyms_) {
        if (auto s = ksyms_->resolve(ip)) {
          f.function = s->function;
          f.offset = s->offset;
          f.module = s->module;
        }
      }
      frames.push_back(std::move(f));
    }
    return frames;
  }

 private:
  const symbolize::Kallsyms* ksyms_;
};

}  // namespace

Result<std::unique_ptr<KernelMemleakSession>> KernelMemleakSession::Create(
    const KernelMemleakOptions& options) {
  std::unique_ptr<KernelMemleakSession> s(new KernelMemleakSession(options));
  if (auto r = s->setup(); !r) return std::unexpected(r.error());
  return s;
}

Result<void> KernelMemleakSession::start() {
  start_ns_ = monotonic_ns();
  return {};
}

void KernelMemleakSession::collect() {
  if (o_.on_trace_event) probe_->poll_events(0, o_.on_trace_event);
}

void KernelMemleakSession::stop() { collect(); }

int32_t KernelMemleakSession::id_for(uint64_t stack_hash) {
  if (stack_hash == 0) return -1;
  auto [it, inserted] = id_of_hash_.try_emplace(stack_hash, static_cast<int32_t>(hash_of_id_.size()));
  if (inserted) hash_of_id_.push_back(stack_hash);
  return it->second;
}

Result<void> KernelMemleakSession::setup() {
  auto ks = symbolize::Kallsyms::Load();
  if (!ks) return std::unexpected(ks.error());
  ksyms_.emplace(std::move(*ks));
  log::info("kernel symbols: {} functions from /proc/kallsyms", ksyms_->size());

  probe::KernelConfig cfg;
  cfg.percpu = o_.percpu;
  cfg.wa_missing_free = o_.wa_missing_free;
  cfg.sampling = alloc_sampling(o_.filter, o_.filter.sampling);
  cfg.max_allocs = o_.filter.max_allocs;
  cfg.max_stacks = o_.filter.max_stacks;
  cfg.trace = static_cast<bool>(o_.on_trace_event);
  cfg.btf_path = o_.filter.btf;
  auto probe = probe::KernelProbe::Create(cfg);
  if (!probe) return std::unexpected(probe.error());
  probe_ = std::move(*probe);

  resolver_ = std::make_unique<KallsymsResolver>(&*ksyms_);
  tracker::TrackerConfig tc;
  tc.sampling = o_.filter.sampling;
  tc.target.kernel = true;
  tc.min_age_ns = static_cast<uint64_t>(o_.reports.older_ms * 1e6);
  tc.show_allocs = o_.reports.show_allocs;
  tc.combined_only = o_.filter.combined_only;
  tc.sort_by = o_.reports.sort;
  tracker_ = std::make_unique<tracker::Tracker>(tc, *resolver_);
  return {};
}

report::Report KernelMemleakSession::report(bool final_report) {
  tracker::Snapshot snap;
  if (o_.filter.combined_only) {
    auto c = probe_->read_combined();
    if (c) {
      for (const auto& e : *c) snap.combined.push_back({0, id_for(e.stack_hash), e.total_size, e.count});
    } else {
      log::warn("{}", c.error().message);
    }
  } else {
    auto a = probe_->read_allocs();
    if (a) {
      snap.allocs.reserve(a->size());
      for (const auto& e : *a)
        snap.allocs.push_back({e.address, 0, e.size, e.timestamp_ns, id_for(e.stack_hash), e.source});
    } else {
      log::warn("{}", a.error().message);
    }
  }
  const probe::KernelCounters k = probe_->read_counters();
  // The Tracker names the loss counters of user mode; the kernel ones map onto them.
  snap.counters[LW_CNT_ALLOCS_FULL] = k[KLW_CNT_ALLOCS_FULL];
  snap.counters[LW_CNT_STACK_LOST] = k[KLW_CNT_STACK_LOST];
  snap.counters[LW_CNT_COMBINED_FULL] = k[KLW_CNT_COMBINED_FULL];
  snap.counters[LW_CNT_EVENTS_LOST] = k[KLW_CNT_EVENTS_LOST];
  snap.failed_attaches = probe_->failed_attaches();
  snap.read_stack = [this](int32_t id) {
    if (id < 0 || static_cast<size_t>(id) >= hash_of_id_.size()) return std::vector<uint64_t>{};
    return probe_->read_stack(hash_of_id_[static_cast<size_t>(id)]);
  };
  uint64_t now = monotonic_ns();
  report::Report rep = tracker_->update(snap, now, static_cast<double>(now - start_ns_) / 1e9);
  rep.final = final_report;
  for (const auto& a : probe_->attach_results())
    if (!a.ok) rep.notes.push_back(fmt::format("not traced: {}: {}", a.tracepoint, a.error));
  if (k[KLW_CNT_REPLACED] > 0 && !o_.wa_missing_free)
    rep.notes.push_back(fmt::format(
        "{} allocations reused an address still recorded as outstanding (its free was not "
        "seen); the per-stack totals of --combined-only keep them unless --wa-missing-free",
        k[KLW_CNT_REPLACED]));
  if (o_.reports.verdicts_only)
    std::erase_if(rep.stacks, [&](const report::StackReport& s) { return s.verdict != *o_.reports.verdicts_only; });
  if (o_.reports.probe_activity) {
    rep.notes.push_back(fmt::format(
        "tracepoint hits: kmalloc {} kmem_cache_alloc {} mm_page_alloc {} percpu_alloc {} kfree {} "
        "kmem_cache_free {} mm_page_free {} mm_page_free_batched {} percpu_free {}",
        k[KLW_CNT_KMALLOC], k[KLW_CNT_KMEM_CACHE_ALLOC], k[KLW_CNT_PAGE_ALLOC], k[KLW_CNT_PERCPU_ALLOC],
        k[KLW_CNT_KFREE], k[KLW_CNT_KMEM_CACHE_FREE], k[KLW_CNT_PAGE_FREE], k[KLW_CNT_PAGE_FREE_BATCHED],
        k[KLW_CNT_PERCPU_FREE]));
    rep.notes.push_back(fmt::format(
        "sampled {} recorded {} freed {} (by mm_page_free_batched {}) replaced {}", k[KLW_CNT_SAMPLED],
        k[KLW_CNT_RECORDED], k[KLW_CNT_FREED], k[KLW_CNT_FREED_BATCHED], k[KLW_CNT_REPLACED]));
  }
  return rep;
}

}  // namespace leakwatch::session
