#include "cli/kmemleak_cmd.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <unordered_map>

#include "analysis/sampling.h"
#include "cli/output.h"
#include "cli/tracer_setup.h"
#include "common/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "probe/kernel_probe.h"
#include "symbolize/kallsyms.h"

namespace leakwatch::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;

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

class KernelSession {
 public:
  KernelSession(const MemleakOptions& o, const KernelRunPlan& p) : o_(o), p_(p) {}
  int run();

 private:
  Result<void> setup();
  int32_t id_for(uint64_t stack_hash);
  report::Report build_report(bool final_report);
  report::TextOptions text_options() const;
  int finish();

  const MemleakOptions& o_;
  const KernelRunPlan& p_;
  std::unique_ptr<probe::KernelProbe> probe_;
  std::optional<symbolize::Kallsyms> ksyms_;
  std::unique_ptr<KallsymsResolver> resolver_;
  std::unique_ptr<tracker::Tracker> tracker_;
  // The Tracker keys stacks by a 32-bit id; kernel stacks are kept by a 64-bit hash.
  std::unordered_map<uint64_t, int32_t> id_of_hash_;
  std::vector<uint64_t> hash_of_id_;
  UniqueFd signal_fd_;
  uint64_t start_ns_ = 0;
  int64_t reports_ = 0;
};

int32_t KernelSession::id_for(uint64_t stack_hash) {
  if (stack_hash == 0) return -1;
  auto [it, inserted] = id_of_hash_.try_emplace(stack_hash, static_cast<int32_t>(hash_of_id_.size()));
  if (inserted) hash_of_id_.push_back(stack_hash);
  return it->second;
}

Result<void> KernelSession::setup() {
  auto signals = signals_to_fd({SIGINT, SIGTERM, SIGHUP, SIGPIPE});
  if (!signals) return std::unexpected(signals.error());
  signal_fd_ = std::move(*signals);

  auto ks = symbolize::Kallsyms::Load();
  if (!ks) return std::unexpected(ks.error());
  ksyms_.emplace(std::move(*ks));
  log::info("kernel symbols: {} functions from /proc/kallsyms", ksyms_->size());

  probe::KernelConfig cfg;
  cfg.percpu = o_.percpu;
  cfg.wa_missing_free = o_.wa_missing_free;
  cfg.min_size = p_.min_size;
  cfg.max_size = p_.max_size;
  cfg.sample_mode = p_.sample_mode;
  cfg.sample_rate = p_.sampling.rate;
  if (p_.sample_mode == probe::SampleMode::kBytes) cfg.exp_table = analysis::exponential_table();
  cfg.max_allocs = o_.max_allocs;
  cfg.max_stacks = o_.max_stacks;
  cfg.trace = o_.trace;
  cfg.btf_path = o_.btf;
  auto probe = probe::KernelProbe::Create(cfg);
  if (!probe) return std::unexpected(probe.error());
  probe_ = std::move(*probe);
  for (const auto& a : probe_->attach_results()) {
    if (a.ok) log::info("  tracepoint {}", a.tracepoint);
    else log::warn("tracepoint {} not traced: {}", a.tracepoint, a.error);
  }

  resolver_ = std::make_unique<KallsymsResolver>(&*ksyms_);
  tracker::TrackerConfig tc;
  tc.sampling = p_.sampling;
  tc.target.kernel = true;
  tc.min_age_ns = static_cast<uint64_t>(o_.older_ms * 1e6);
  tc.show_allocs = o_.show_allocs;
  tc.combined_only = o_.combined_only;
  tc.sort_by = p_.sort;
  tracker_ = std::make_unique<tracker::Tracker>(tc, *resolver_);
  return {};
}

report::Report KernelSession::build_report(bool final_report) {
  tracker::Snapshot snap;
  if (o_.combined_only) {
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
  if (p_.verdicts_only)
    std::erase_if(rep.stacks, [&](const report::StackReport& s) { return s.verdict != *p_.verdicts_only; });
  if (o_.verbose) {
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

report::TextOptions KernelSession::text_options() const {
  report::TextOptions t;
  t.top = o_.top;
  t.show_allocs = o_.show_allocs;
  t.time_hhmmss = local_hhmmss();
  t.kernel = true;
  return t;
}

int KernelSession::finish() {
  report::Report rep = build_report(true);
  if (auto w = write_rendered(o_.output, report::render(rep, p_.format, text_options())); !w) {
    log::error("{}", w.error().message);
    return kExitError;
  }
  return kExitOk;
}

int KernelSession::run() {
  if (auto r = setup(); !r) {
    log::error("{}", r.error().message);
    return kExitError;
  }
  const bool interval_text = o_.output.empty() && p_.format == report::Format::kText;
  std::printf("Attaching to kernel allocators, Ctrl+C to quit.\n");
  std::fflush(stdout);
  start_ns_ = monotonic_ns();

  const uint64_t interval_ns = static_cast<uint64_t>(o_.interval_s * 1e9);
  const uint64_t end_ns = o_.duration_s > 0 ? start_ns_ + static_cast<uint64_t>(o_.duration_s * 1e9) : 0;
  uint64_t next_report = start_ns_ + interval_ns;
  auto print_event = [](const klw_event& e) {
    if (e.type == 0)
      std::printf("[%u] alloc exited, size = %llu, result = %llx (%s)\n", e.tgid,
                  static_cast<unsigned long long>(e.size), static_cast<unsigned long long>(e.addr),
                  probe::source_name(e.source));
    else
      std::printf("[%u] free entered, address = %llx, size = %llu (%s)\n", e.tgid,
                  static_cast<unsigned long long>(e.addr), static_cast<unsigned long long>(e.size),
                  probe::source_name(e.source));
  };

  for (;;) {
    uint64_t now = monotonic_ns();
    if (end_ns && now >= end_ns) break;
    if (now >= next_report) {
      if (o_.count > 0 && reports_ + 1 >= o_.count) break;  // the last report is the final one
      report::Report rep = build_report(false);
      reports_++;
      if (interval_text) {
        std::string text = report::write_bcc_text(rep, text_options());
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      }
      next_report += interval_ns;
      if (next_report <= now) next_report = now + interval_ns;
      continue;
    }
    uint64_t wake = next_report;
    if (end_ns && end_ns < wake) wake = end_ns;
    int timeout_ms = static_cast<int>((wake - now + 999999) / 1000000);
    if (o_.trace) timeout_ms = std::min(timeout_ms, 100);
    pollfd fds[1] = {{signal_fd_.get(), POLLIN, 0}};
    int r = ::poll(fds, 1, timeout_ms);
    if (o_.trace) probe_->poll_events(0, print_event);
    if (r < 0 && errno != EINTR) {
      log::error("poll: {}", std::strerror(errno));
      return kExitError;
    }
    bool stop = false;
    if (r > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si;
      while (::read(signal_fd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) stop = true;
    }
    if (stop) break;
  }
  if (o_.trace) probe_->poll_events(0, print_event);
  return finish();
}

}  // namespace

int run_kernel_memleak(const MemleakOptions& opts, const KernelRunPlan& plan) {
  KernelSession s(opts, plan);
  return s.run();
}

}  // namespace leakwatch::cli
