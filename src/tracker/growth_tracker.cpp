#include "tracker/growth_tracker.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/procfs.h"
#include "tracker/frame_resolver.h"

namespace leakwatch::tracker {
namespace {

report::RssFigure rss_figure(const lw_gr_rss& r, int member) {
  report::RssFigure f;
  f.seen = (r.seen_mask >> member) & 1;
  if (!f.seen) return f;
  f.first = r.first[member];
  f.current = r.cur[member];
  f.peak = r.peak[member];
  return f;
}

// Per-stack sums while a report is built.
struct Row {
  std::array<uint64_t, kFaultClasses> sampled{};
  double mapped = 0, brk = 0, file_mapped = 0;
  uint64_t regions = 0;
};

constexpr uint32_t kPageFaultWrite = 1u << 1;  // x86 page fault error code: a write access
// Sampled faults outside every known mapping re-read /proc/PID/maps at most this often.
constexpr uint64_t kMapsRereadFaults = 16;

bool anonymous_path(const std::string& path) {
  // "" (anonymous), "[heap]", "[stack]", "[anon:name]"; shared anonymous memory shows as
  // "/dev/zero (deleted)" and System V shared memory as "/SYSV...".
  return path.empty() || path[0] == '[' || path.starts_with("/dev/zero") ||
         path.starts_with("/SYSV");
}

}  // namespace

std::map<std::string, uint64_t> growth_loss_counters(const probe::GrowthCounters& c) {
  return {
      {"stack_lost", c[LW_GR_CNT_STACK_LOST]},
      {"events_lost", c[LW_GR_CNT_EVENTS_LOST]},
      {"syscall_state_full", c[LW_GR_CNT_INFLIGHT_FULL]},
      {"rss_map_full", c[LW_GR_CNT_RSS_FULL]},
  };
}

report::Estimate sampled_count_estimate(uint64_t k, double p, double weight) {
  report::Estimate e;
  double kk = static_cast<double>(k);
  e.sampled = kk * weight;
  if (p >= 1.0 || k == 0) {
    e.estimate = e.ci_lo = e.ci_hi = e.sampled;
    return e;
  }
  // Horvitz-Thompson: each sampled item stands for 1/p; variance k (1 - p) / p^2.
  double est = kk / p;
  double half = 1.96 * std::sqrt(kk * (1.0 - p)) / p;
  e.estimate = est * weight;
  e.ci_lo = std::max(kk, est - half) * weight;
  e.ci_hi = (est + half) * weight;
  return e;
}

GrowthTracker::GrowthTracker(GrowthTrackerConfig cfg, FrameResolver& resolver)
    : cfg_(std::move(cfg)), resolver_(resolver) {}

void GrowthTracker::on_event(const lw_gr_event& e) {
  switch (e.type) {
    case LW_GR_EV_FAULT: {
      faults_seen_++;
      note_stack(e.tgid, e.stack);
      FaultClass c = classify(e.tgid, e.addr, (e.flags & kPageFaultWrite) != 0);
      sampled_[{e.tgid, e.stack}][static_cast<size_t>(c)]++;
      return;
    }
    case LW_GR_EV_EXEC:
      regions_.erase(e.tgid);
      base_maps_.erase(e.tgid);
      return;
    case LW_GR_EV_EXIT:
      if (!cfg_.keep_exited) regions_.erase(e.tgid);
      base_maps_.erase(e.tgid);
      return;
    default:
      break;
  }
  if (e.type != LW_GR_EV_MUNMAP) note_stack(e.tgid, e.stack);
  auto it = regions_.find(e.tgid);
  if (it == regions_.end()) it = regions_.emplace(e.tgid, RegionMap(cfg_.page_size)).first;
  it->second.apply(e);
}

const MapEntry* GrowthTracker::base_entry(uint32_t tgid, uint64_t addr) {
  auto lookup = [addr](const BaseMaps& b) -> const MapEntry* {
    auto it = std::upper_bound(b.entries.begin(), b.entries.end(), addr,
                               [](uint64_t a, const MapEntry& m) { return a < m.start; });
    if (it == b.entries.begin()) return nullptr;
    --it;
    return addr < it->end ? &*it : nullptr;
  };
  auto it = base_maps_.find(tgid);
  if (it != base_maps_.end()) {
    if (const MapEntry* m = lookup(it->second)) return m;
    if (faults_seen_ - it->second.read_at_fault < kMapsRereadFaults) return nullptr;
  }
  if (!cfg_.read_maps) return nullptr;
  BaseMaps& b = base_maps_[tgid];
  b.read_at_fault = faults_seen_;
  auto maps = cfg_.read_maps(tgid);
  b.entries = maps ? std::move(*maps) : std::vector<MapEntry>{};
  std::sort(b.entries.begin(), b.entries.end(),
            [](const MapEntry& x, const MapEntry& y) { return x.start < y.start; });
  return lookup(b);
}

FaultClass GrowthTracker::classify(uint32_t tgid, uint64_t addr, bool write) {
  // A write to a private file page makes an anonymous copy of it.
  if (auto it = regions_.find(tgid); it != regions_.end()) {
    if (const Region* r = it->second.find(addr)) {
      if (r->anon || (write && !r->shared)) return FaultClass::kAnon;
      return FaultClass::kFile;
    }
  }
  if (const MapEntry* m = base_entry(tgid, addr)) {
    bool is_private = !m->shared;
    if (anonymous_path(m->path) || (write && is_private)) return FaultClass::kAnon;
    return FaultClass::kFile;
  }
  return FaultClass::kUnknown;
}

const std::vector<report::Frame>& GrowthTracker::frames_for(
    const StackKey& key, const std::function<std::vector<uint64_t>(uint64_t)>& read_stack) {
  auto it = frames_.find(key);
  if (it != frames_.end()) return it->second;
  std::vector<report::Frame> frames;
  if (key.stack == LW_GR_NO_STACK) {
    report::Frame f;
    f.function = "[lost stack]";
    frames.push_back(f);
  } else if (read_stack) {
    frames = resolver_.resolve(key.tgid, read_stack(key.stack));
  }
  unresolved_.erase(key);
  return frames_.emplace(key, std::move(frames)).first->second;
}

void GrowthTracker::note_stack(uint32_t tgid, uint64_t stack) {
  StackKey key{tgid, stack};
  if (!frames_.contains(key)) unresolved_.insert(key);
}

void GrowthTracker::resolve_new(
    const std::function<std::vector<uint64_t>(uint64_t)>& read_stack) {
  std::set<StackKey> keys;
  keys.swap(unresolved_);
  for (const StackKey& key : keys) frames_for(key, read_stack);
}

report::GrowthReport GrowthTracker::update(const GrowthSnapshot& snap, double session_s) {
  const double p = 1.0 / std::max<uint32_t>(cfg_.sample_period, 1);
  const double page = static_cast<double>(cfg_.page_size);
  std::map<StackKey, Row> rows;
  std::array<uint64_t, kFaultClasses> by_class{};
  for (const auto& [key, counts] : sampled_) {
    rows[key].sampled = counts;
    for (int c = 0; c < kFaultClasses; c++) by_class[c] += counts[c];
  }
  report::GrowthTotals t;
  for (const auto& [tgid, regions] : regions_) {
    regions.for_each([&, tgid = tgid](uint64_t start, const Region& r) {
      Row& row = rows[{tgid, r.stack}];
      double bytes = static_cast<double>(r.end - start);
      if (r.anon) {
        row.mapped += bytes;
        row.regions++;
        t.mapped_bytes += bytes;
        if (r.brk) {
          row.brk += bytes;
          t.brk_bytes += bytes;
        }
      } else {
        row.file_mapped += bytes;
        t.file_mapped_bytes += bytes;
      }
    });
  }

  report::GrowthReport rep;
  rep.target = cfg_.target;
  rep.sample_period = std::max<uint32_t>(cfg_.sample_period, 1);
  rep.page_size = cfg_.page_size;
  rep.stack_walker = cfg_.walker == probe::StackWalker::kKernel ? "kernel" : "fp";
  rep.duration_s = session_s;
  rep.timestamp_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  rep.lost = growth_loss_counters(snap.counters);

  for (const auto& [key, row] : rows) {
    report::GrowthStack s;
    // Opaque but stable: the stack (id or hash) mixed with the process.
    s.stack_id = key.stack ^ (static_cast<uint64_t>(key.tgid) * 0x9e3779b97f4a7c15ull);
    s.pid = static_cast<int>(key.tgid);
    // Faults that could not be classified (the process was gone before its maps could be
    // read) count with the anonymous ones: growth is what this report is for, and the
    // totals say how many there were.
    uint64_t anon = row.sampled[static_cast<size_t>(FaultClass::kAnon)] +
                    row.sampled[static_cast<size_t>(FaultClass::kUnknown)];
    uint64_t file = row.sampled[static_cast<size_t>(FaultClass::kFile)];
    s.faults = sampled_count_estimate(anon, p, 1.0);
    s.faulted_bytes = sampled_count_estimate(anon, p, page);
    s.file_faulted_bytes = sampled_count_estimate(file, p, page);
    s.mapped_bytes = row.mapped;
    s.mapped_regions = row.regions;
    s.brk_bytes = row.brk;
    s.file_mapped_bytes = row.file_mapped;
    s.growth_bytes = std::max(s.faulted_bytes.estimate, s.mapped_bytes);
    t.faulted_bytes += s.faulted_bytes.estimate;
    if (s.growth_bytes <= 0 && s.file_faulted_bytes.estimate <= 0 && s.file_mapped_bytes <= 0)
      continue;
    s.frames = frames_for(key, snap.read_stack);
    rep.stacks.push_back(std::move(s));
  }
  std::sort(rep.stacks.begin(), rep.stacks.end(),
            [](const report::GrowthStack& a, const report::GrowthStack& b) {
              if (a.growth_bytes != b.growth_bytes) return a.growth_bytes > b.growth_bytes;
              double fa = a.file_faulted_bytes.estimate + a.file_mapped_bytes;
              double fb = b.file_faulted_bytes.estimate + b.file_mapped_bytes;
              if (fa != fb) return fa > fb;
              return a.stack_id < b.stack_id;
            });

  const auto& c = snap.counters;
  t.faults = c[LW_GR_CNT_FAULTS];
  t.sampled_faults = c[LW_GR_CNT_SAMPLED];
  // The sampled faults' split, scaled to every fault (exact when every fault is sampled
  // and none was lost).
  double a = static_cast<double>(by_class[0]);
  double f = static_cast<double>(by_class[1]);
  double u = static_cast<double>(by_class[2]);
  t.classes_estimated = cfg_.sample_period > 1 || c[LW_GR_CNT_EVENTS_LOST] > 0;
  if (a + f + u > 0) {
    double scale = static_cast<double>(t.faults) / (a + f + u);
    a *= scale;
    f *= scale;
    u *= scale;
  }
  t.anon_faults = a;
  t.file_faults = f;
  t.unknown_faults = u;
  t.mmap_calls = c[LW_GR_CNT_MMAP];
  t.munmap_calls = c[LW_GR_CNT_MUNMAP];
  t.mremap_calls = c[LW_GR_CNT_MREMAP];
  t.brk_calls = c[LW_GR_CNT_BRK];
  rep.totals = t;

  std::map<uint32_t, report::GrowthProcess> procs;
  if (cfg_.target.pid > 0) procs[static_cast<uint32_t>(cfg_.target.pid)].pid = cfg_.target.pid;
  for (const auto& r : snap.rss) {
    report::GrowthProcess& gp = procs[r.tgid];
    gp.pid = static_cast<int>(r.tgid);
    gp.rss_file = rss_figure(r.rss, 0);
    gp.rss_anon = rss_figure(r.rss, 1);
    gp.rss_swap = rss_figure(r.rss, 2);
    gp.rss_shmem = rss_figure(r.rss, 3);
  }
  for (auto& [tgid, gp] : procs) {
    if (snap.comm_of) gp.comm = snap.comm_of(gp.pid);
    if (gp.comm.empty() && gp.pid == cfg_.target.pid) gp.comm = cfg_.target.comm;
    rep.processes.push_back(std::move(gp));
  }
  if (cfg_.sample_period > 1)
    rep.notes.push_back(fmt::format(
        "fault stacks sampled 1 in {}: per-stack faults and faulted bytes are estimates",
        cfg_.sample_period));
  return rep;
}

}  // namespace leakwatch::tracker
