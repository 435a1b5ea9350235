#include "probe/growth_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "common/fd.h"
#include "growth.skel.h"
#include "probe/tracefs.h"

namespace leakwatch::probe {
namespace {

static_assert(sizeof(lw_gr_stack) == 8 + 8 * LW_GR_MAX_DEPTH);
static_assert(sizeof(lw_gr_event) == 72);
static_assert(sizeof(lw_gr_inflight) == 40);
static_assert(sizeof(lw_gr_rss) == 3 * 8 * LW_GR_RSS_MEMBERS + 16);

}  // namespace

void GrowthProbe::SkelDeleter::operator()(growth_bpf* s) const { growth_bpf__destroy(s); }

GrowthProbe::~GrowthProbe() = default;

Result<std::unique_ptr<GrowthProbe>> GrowthProbe::Create(const GrowthProbeConfig& cfg) {
  if (cfg.pid <= 0 && cfg.cgroup_path.empty())
    return fail("internal: growth probe needs a pid or a cgroup to filter on");
  std::unique_ptr<GrowthProbe> p(new GrowthProbe());
  p->cfg_ = cfg;

  UniqueFd cgroup_fd;
  if (!cfg.cgroup_path.empty()) {
    cgroup_fd.reset(::open(cfg.cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup_fd.valid()) return fail_errno(fmt::format("--cgroup {}", cfg.cgroup_path));
  }

  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  set_btf_path(open_opts, cfg.btf_path);
  growth_bpf* raw = growth_bpf__open_opts(&open_opts);
  if (!raw) return fail_errno("cannot open the growth BPF object");
  p->skel_.reset(raw);
  auto* s = p->skel_.get();

  s->rodata->target_tgid = cfg.pid > 0 ? static_cast<uint32_t>(cfg.pid) : 0;
  s->rodata->wait_for_exec = cfg.wait_for_exec && cfg.pid > 0 ? 1 : 0;
  s->rodata->filter_cgroup = cgroup_fd.valid() ? 1 : 0;
  s->rodata->stack_walker = static_cast<uint32_t>(cfg.walker);
  s->rodata->sample_period = cfg.sample_period ? cfg.sample_period : 1;
  s->rodata->page_shift = page_shift();
  s->rodata->syscall_stacks = cfg.syscall_stacks ? 1 : 0;

  // Only the walker in use needs its stack map at full size.
  bool kernel_walk = cfg.walker == StackWalker::kKernel;
  bpf_map__set_max_entries(s->maps.stack_traces, kernel_walk ? cfg.max_stacks : 1);
  bpf_map__set_max_entries(s->maps.fp_stacks, kernel_walk ? 1 : cfg.max_stacks);
  bpf_map__set_max_entries(s->maps.events, cfg.ringbuf_bytes);
  if (!cfg.rss) bpf_program__set_autoload(s->progs.lw_gr_rss, false);

  if (int err = growth_bpf__load(s); err)
    return std::unexpected(load_error("the growth BPF programs", err, cfg.btf_path));
  if (cgroup_fd.valid()) {
    uint32_t key = 0;
    uint32_t fd = static_cast<uint32_t>(cgroup_fd.get());
    if (bpf_map_update_elem(bpf_map__fd(s->maps.cgroup_filter), &key, &fd, BPF_ANY) != 0)
      return fail_errno(fmt::format("--cgroup {}: not a cgroup v2 directory", cfg.cgroup_path));
  }

  bpf_program* progs[] = {
      s->progs.lw_gr_fault,        s->progs.lw_gr_enter_mmap,  s->progs.lw_gr_exit_mmap,
      s->progs.lw_gr_enter_munmap, s->progs.lw_gr_exit_munmap, s->progs.lw_gr_enter_mremap,
      s->progs.lw_gr_exit_mremap,  s->progs.lw_gr_enter_brk,   s->progs.lw_gr_exit_brk,
      s->progs.lw_gr_exec,         s->progs.lw_gr_exit,        s->progs.lw_gr_rss,
  };
  ensure_tracefs();  // libbpf finds tracepoint ids there
  for (bpf_program* prog : progs) {
    if (!bpf_program__autoload(prog)) continue;
    bpf_link* l = bpf_program__attach(prog);
    if (!l)
      return fail_errno(fmt::format("cannot attach {} ({})", bpf_program__name(prog),
                                    bpf_program__section_name(prog)));
    p->links_.emplace_back(l);
  }

  auto ring = RingBuffer::Open(bpf_map__fd(s->maps.events), "the growth event ring buffer");
  if (!ring) return std::unexpected(ring.error());
  p->events_ = std::move(*ring);
  return p;
}

std::vector<uint64_t> GrowthProbe::read_stack(uint64_t stack) const {
  std::vector<uint64_t> frames;
  if (stack == LW_GR_NO_STACK) return frames;
  if (cfg_.walker == StackWalker::kKernel) {
    uint32_t id = static_cast<uint32_t>(stack);
    return read_stack_ips(bpf_map__fd(skel_->maps.stack_traces), &id, LW_GR_MAX_DEPTH);
  }
  lw_gr_stack st{};
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.fp_stacks), &stack, &st) != 0) return frames;
  uint32_t depth = st.depth < LW_GR_MAX_DEPTH ? st.depth : LW_GR_MAX_DEPTH;
  frames.assign(st.ips, st.ips + depth);
  return frames;
}

std::vector<RssEntry> GrowthProbe::read_rss() const {
  std::vector<RssEntry> out;
  int fd = bpf_map__fd(skel_->maps.rss);
  uint32_t key = 0, next = 0;
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    RssEntry e;
    e.tgid = next;
    if (bpf_map_lookup_elem(fd, &next, &e.rss) == 0) out.push_back(e);
    key = next;
    prev = &key;
  }
  return out;
}

GrowthCounters GrowthProbe::read_counters() const {
  return sum_percpu_counters<LW_GR_CNT_MAX>(bpf_map__fd(skel_->maps.counters));
}

int GrowthProbe::drain_events(const std::function<void(const lw_gr_event&)>& on_event) {
  return events_->consume([&](const void* data, size_t len) {
    if (len < sizeof(lw_gr_event)) return;
    lw_gr_event e;
    std::memcpy(&e, data, sizeof e);
    on_event(e);
  });
}

std::vector<ProgramRunStats> GrowthProbe::run_stats() const { return program_run_stats(skel_->obj); }

}  // namespace leakwatch::probe
