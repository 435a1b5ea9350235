#include "probe/cost_sampler.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>

#include <fmt/format.h>

#include "cost_sampler.skel.h"
#include "probe/memleak_probe.h"

namespace leakwatch::probe {

CostSplit classify_samples(const std::vector<std::pair<uint64_t, uint64_t>>& samples,
                           const std::vector<MapEntry>& maps, const std::vector<ProbeSite>& sites,
                           std::set<uint64_t>& trap_sites) {
  std::vector<const MapEntry*> by_start;
  by_start.reserve(maps.size());
  for (const MapEntry& m : maps) by_start.push_back(&m);
  std::sort(by_start.begin(), by_start.end(),
            [](const MapEntry* a, const MapEntry* b) { return a->start < b->start; });
  CostSplit split;
  for (const auto& [ip, n] : samples) {
    if (ip & kSampleInTrap) {
      split.at_probes += n;
      // Breakpoint traps show the address after the breakpoint: one byte before it too.
      trap_sites.insert((ip & ~kSampleInTrap) - 1);
    }
  }
  auto near_trap_site = [&](uint64_t ip) {
    auto it = trap_sites.upper_bound(ip);
    return it != trap_sites.begin() && ip - *std::prev(it) < kProbeSiteBytes;
  };
  for (const auto& [ip, n] : samples) {
    if (ip & kSampleInTrap) continue;
    auto it = std::upper_bound(by_start.begin(), by_start.end(), ip,
                               [](uint64_t v, const MapEntry* m) { return v < m->start; });
    const MapEntry* m = it == by_start.begin() ? nullptr : *(it - 1);
    if (m == nullptr || ip >= m->end) {
      split.unmapped += n;
      continue;
    }
    bool at_probe = m->path == "[uprobes]" || near_trap_site(ip);
    if (!at_probe && m->file_backed()) {
      const uint64_t off = ip - m->start + m->offset;
      at_probe = std::any_of(sites.begin(), sites.end(), [&](const ProbeSite& s) {
        return off >= s.offset && off < s.offset + kProbeSiteBytes && s.inode == m->inode;
      });
    }
    (at_probe ? split.at_probes : split.work) += n;
    if (!at_probe && !std::any_of(sites.begin(), sites.end(),
                                  [&](const ProbeSite& s) { return s.inode == m->inode; }))
      split.work_elsewhere += n;
  }
  return split;
}

std::vector<ProbeSite> probe_sites(int pid, const std::vector<AttachResult>& attached) {
  std::vector<ProbeSite> sites;
  std::map<std::string, uint64_t> inodes;
  for (const AttachResult& a : attached) {
    if (!a.ok || a.skipped) continue;
    auto [it, fresh] = inodes.emplace(a.object, 0);
    if (fresh) {
      struct stat st {};
      if (::stat(target_path(pid, a.object).c_str(), &st) == 0) it->second = st.st_ino;
    }
    if (it->second != 0) sites.push_back({it->second, a.offset});
  }
  return sites;
}

std::optional<double> share_in_probed_objects(const std::vector<std::pair<uint64_t, uint64_t>>& samples,
                                              const std::vector<MapEntry>& maps,
                                              const std::vector<ProbeSite>& sites,
                                              uint64_t min_samples) {
  std::set<uint64_t> trap_sites;  // none: no probe yet
  CostSplit split = classify_samples(samples, maps, sites, trap_sites);
  const uint64_t n = split.work + split.at_probes;
  if (n < min_samples || n == 0) return std::nullopt;
  return static_cast<double>(n - split.work_elsewhere) / static_cast<double>(n);
}

void CostSampler::SkelDeleter::operator()(cost_sampler_bpf* s) const { cost_sampler_bpf__destroy(s); }

CostSampler::~CostSampler() {
  links_.clear();  // the programs' links first, then their events
  event_fds_.clear();
}

Result<std::unique_ptr<CostSampler>> CostSampler::Create(
    int pid, const std::vector<std::pair<uint64_t, uint64_t>>& trap_ranges, int hz,
    const std::string& btf_path) {
  if (pid <= 0) return fail("cost sampling: no target process");
  if (trap_ranges.empty()) return fail("cost sampling: the kernel's uprobe trap functions are unknown");
  std::unique_ptr<CostSampler> s(new CostSampler());
  s->pid_ = pid;
  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  set_btf_path(open_opts, btf_path);
  s->skel_.reset(cost_sampler_bpf__open_opts(&open_opts));
  if (!s->skel_) return fail("cost sampling: cannot open its BPF object: {}", std::strerror(errno));
  s->skel_->rodata->target_tgid = static_cast<uint32_t>(pid);
  const size_t ranges = std::min(trap_ranges.size(), kMaxTrapRanges);
  for (size_t i = 0; i < ranges; i++) {
    s->skel_->rodata->lw_cost_trap_ranges[i][0] = trap_ranges[i].first;
    s->skel_->rodata->lw_cost_trap_ranges[i][1] = trap_ranges[i].second;
  }
  s->skel_->rodata->lw_cost_trap_range_count = static_cast<uint32_t>(ranges);
  if (int err = cost_sampler_bpf__load(s->skel_.get()); err)
    return std::unexpected(load_error("the cost sampler", err, btf_path));

  const int cpus = libbpf_num_possible_cpus();
  std::string why;
  for (int cpu = 0; cpu < std::max(cpus, 1); cpu++) {
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.freq = 1;
    attr.sample_freq = static_cast<uint64_t>(std::max(hz, 1));
    UniqueFd fd(static_cast<int>(::syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)));
    if (!fd.valid()) {
      if (errno != ENODEV) why = fmt::format("perf_event_open on CPU {}: {}", cpu, std::strerror(errno));
      continue;  // ENODEV: an offline CPU
    }
    bpf_link* link = bpf_program__attach_perf_event(s->skel_->progs.lw_cost_sample, fd.get());
    if (!link) {
      why = fmt::format("cannot attach to CPU {}'s clock: {}", cpu, std::strerror(errno));
      continue;
    }
    s->links_.emplace_back(link);
    s->event_fds_.push_back(std::move(fd));
  }
  if (s->links_.empty())
    return fail("cost sampling: {}", why.empty() ? "no CPU clock event" : why);
  if (!why.empty()) return fail("cost sampling: {}", why);  // a CPU not sampled: a biased split
  return s;
}

Result<CostSplit> CostSampler::read(const std::vector<ProbeSite>& sites) {
  // Drained, not just read: the map holds the addresses seen since the last read, so it
  // never fills on a long trace, and each batch is sorted with the maps of its time.
  auto samples = drain();
  if (!samples) return std::unexpected(samples.error());
  total_.dropped = __atomic_load_n(&skel_->bss->lw_cost_dropped, __ATOMIC_RELAXED);
  if (samples->empty()) return total_;  // nothing new: no maps to read
  auto maps = read_proc_maps(pid_);
  if (!maps) return std::unexpected(maps.error());
  CostSplit now = classify_samples(*samples, *maps, sites, trap_sites_);
  total_.at_probes += now.at_probes;
  total_.work += now.work;
  total_.work_elsewhere += now.work_elsewhere;
  total_.unmapped += now.unmapped;
  return total_;
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> CostSampler::drain() {
  const int fd = bpf_map__fd(skel_->maps.lw_cost_ips);
  constexpr uint32_t kChunk = 4096;
  std::vector<uint64_t> keys(kChunk), values(kChunk);
  std::vector<std::pair<uint64_t, uint64_t>> samples;
  uint64_t batch = 0;
  void* in = nullptr;
  for (;;) {
    uint32_t n = kChunk;
    int err = bpf_map_lookup_and_delete_batch(fd, in, &batch, keys.data(), values.data(), &n, nullptr);
    const int e = err ? errno : 0;
    for (uint32_t i = 0; i < n; i++) samples.emplace_back(keys[i], values[i]);
    if (!err) {
      in = &batch;
      continue;
    }
    if (e == ENOENT) break;
    return fail_errno("cannot read the cost sampler's addresses", e);
  }
  return samples;
}

}  // namespace leakwatch::probe
