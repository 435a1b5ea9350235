#include "probe/memleak_probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cstring>

#include "common/clock.h"
#include "common/log.h"
#include "bpf/sampling_table.h"
#include "memleak.skel.h"

namespace leakwatch::probe {
namespace {

// Attach types of uprobe_multi links (include/uapi/linux/bpf.h of kernels >= 6.6/6.13).
// libbpf 1.1.2 and the distribution's UAPI headers predate them, so they are spelled out
// here; the values are kernel ABI and never change.
constexpr uint32_t kAttachUprobeMulti = 48;
constexpr uint32_t kAttachUprobeSession = 57;
constexpr uint32_t kUprobeMultiReturn = 1;

// The BPF_LINK_CREATE attribute layout for uprobe_multi (union bpf_attr.link_create).
struct LinkCreateUprobeMulti {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint64_t path;
  uint64_t offsets;
  uint64_t ref_ctr_offsets;
  uint64_t cookies;
  uint32_t cnt;
  uint32_t multi_flags;
  uint32_t pid;
  uint32_t pad;
};
static_assert(sizeof(LinkCreateUprobeMulti) == 64);
static_assert(sizeof(lw_alloc_key) == 16);
static_assert(sizeof(lw_alloc_info) == 24);
static_assert(sizeof(lw_thread_state) == 56);
static_assert(sizeof(lw_event) == 40);

constexpr int kBpfLinkCreate = 28;  // enum bpf_cmd BPF_LINK_CREATE

int create_uprobe_multi_link(int prog_fd, uint32_t attach_type, const std::string& path,
                             const std::vector<uint64_t>& offsets,
                             const std::vector<uint64_t>& cookies, int pid, bool ret) {
  LinkCreateUprobeMulti attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = attach_type;
  attr.path = reinterpret_cast<uint64_t>(path.c_str());
  attr.offsets = reinterpret_cast<uint64_t>(offsets.data());
  attr.cookies = reinterpret_cast<uint64_t>(cookies.data());
  attr.cnt = static_cast<uint32_t>(offsets.size());
  attr.multi_flags = ret ? kUprobeMultiReturn : 0;
  attr.pid = static_cast<uint32_t>(pid > 0 ? pid : 0);
  long fd = ::syscall(__NR_bpf, kBpfLinkCreate, &attr, sizeof(attr));
  return fd < 0 ? -errno : static_cast<int>(fd);
}

bool is_alloc(lw_fn_kind k) { return k >= LW_FN_MALLOC && k <= LW_FN_MREMAP; }

// free, munmap, the hooks' free: attached before any allocation function.
bool is_release(uint32_t kind) {
  return kind == LW_FN_HOOK_FREE || (kind != LW_FN_HOOK_ALLOC && !is_alloc(static_cast<lw_fn_kind>(kind)));
}

}  // namespace

bool kernel_supports_uprobe_session() {
  struct btf* btf = btf__load_vmlinux_btf();
  if (!btf) return false;
  bool ok = btf__find_by_name_kind(btf, "bpf_session_is_return", BTF_KIND_FUNC) >= 0;
  btf__free(btf);
  return ok;
}

void MemleakProbe::SkelDeleter::operator()(memleak_bpf* s) const { memleak_bpf__destroy(s); }

MemleakProbe::~MemleakProbe() = default;

Result<std::unique_ptr<MemleakProbe>> MemleakProbe::Create(const MemleakConfig& cfg) {
  std::unique_ptr<MemleakProbe> p(new MemleakProbe());
  bool session_ok = kernel_supports_uprobe_session();
  if (cfg.attach_mode == AttachMode::kSession && !session_ok)
    return fail("this kernel has no uprobe sessions (needs 6.13+): use --attach classic");
  p->session_ = cfg.attach_mode == AttachMode::kSession ||
                (cfg.attach_mode == AttachMode::kAuto && session_ok);

  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  set_btf_path(open_opts, cfg.btf_path);
  memleak_bpf* raw = memleak_bpf__open_opts(&open_opts);
  if (!raw) return fail_errno("cannot open the memleak BPF object");
  p->skel_.reset(raw);
  auto* s = p->skel_.get();

  if (auto r = set_alloc_sampling(s->rodata, cfg.sampling); !r) return std::unexpected(r.error());
  s->rodata->trace_events = cfg.trace ? 1 : 0;
  s->rodata->keep_combined = cfg.combined ? 1 : 0;
  if (!cfg.cgroup_path.empty()) {
    p->cgroup_fd_.reset(::open(cfg.cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!p->cgroup_fd_.valid()) return fail_errno("--cgroup " + cfg.cgroup_path);
    s->rodata->filter_cgroup = 1;
  }

  bpf_map__set_max_entries(s->maps.allocs, cfg.max_allocs);
  bpf_map__set_max_entries(s->maps.stack_traces, cfg.max_stacks);
  bpf_map__set_max_entries(s->maps.combined, cfg.combined ? cfg.max_stacks : 1);
  if (cfg.trace) bpf_map__set_max_entries(s->maps.events, 4u << 20);
  if (cfg.hook_ring) {
    if (!cfg.inprocess || cfg.unwind_dwarf)
      return fail("internal: the hook ring is for in-process mode with frame-pointer stacks");
    s->rodata->hook_ring = 1;
    if (cfg.hook_ring_bytes > (1u << 30)) return fail("internal: hook ring above 1 GiB");
    uint32_t ring = 4096;  // a power of two, at least one page
    while (ring < cfg.hook_ring_bytes) ring <<= 1;
    bpf_map__set_max_entries(s->maps.hook_events, ring);
    s->rodata->hook_ring_size = ring;
  }
  if (cfg.unwind_dwarf) {
    if (cfg.snapshot_size > LW_SNAPSHOT_MAX)
      return fail("--snapshot-size: at most {} bytes", LW_SNAPSHOT_MAX);
    s->rodata->unwind_dwarf = 1;
    s->rodata->snapshot_size = cfg.snapshot_size;
    uint32_t ring = 4096;  // a power of two, at least one page
    while (ring < cfg.snapshot_ring_bytes) ring <<= 1;
    bpf_map__set_max_entries(s->maps.snapshots, ring);
  }

  if (p->session_) {
    bpf_program__set_autoload(s->progs.lw_alloc_entry, false);
    bpf_program__set_autoload(s->progs.lw_alloc_return, false);
    bpf_program__set_autoload(s->progs.lw_free_entry, false);
    bpf_program__set_expected_attach_type(s->progs.lw_alloc_session,
                                          static_cast<bpf_attach_type>(kAttachUprobeSession));
    bpf_program__set_expected_attach_type(s->progs.lw_free_multi,
                                          static_cast<bpf_attach_type>(kAttachUprobeMulti));
  } else {
    bpf_program__set_autoload(s->progs.lw_alloc_session, false);
    bpf_program__set_autoload(s->progs.lw_free_multi, false);
  }
  if (!cfg.inprocess) {
    bpf_program__set_autoload(s->progs.lw_hook_alloc, false);
    bpf_program__set_autoload(s->progs.lw_hook_free, false);
  } else if (p->session_) {
    // Entry-only uprobe_multi links, like the release functions.
    for (bpf_program* prog : {s->progs.lw_hook_alloc, s->progs.lw_hook_free})
      bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(kAttachUprobeMulti));
  }

  if (int err = memleak_bpf__load(s); err)
    return std::unexpected(load_error("the memleak BPF programs", err, cfg.btf_path));

  if (p->cgroup_fd_.valid()) {
    uint32_t zero = 0;
    int fd = p->cgroup_fd_.get();
    if (bpf_map_update_elem(bpf_map__fd(s->maps.cgroup_filter), &zero, &fd, BPF_ANY))
      return fail_errno("cannot set the cgroup filter for " + cfg.cgroup_path);
  }
  p->pid_ = cfg.pid;
  p->attach_pause_us_ = cfg.attach_pause_us;
  if (auto r = p->attach_objects(cfg.objects); !r) return std::unexpected(r.error());
  p->live_since_ns_ = monotonic_ns();
  bool any_alloc = false;
  for (const auto& a : p->attach_results_) any_alloc |= a.ok;
  if (!any_alloc) {
    std::string first_error;
    for (const auto& a : p->attach_results_)
      if (!a.ok && !a.skipped) {
        first_error = fmt::format("{} in {}: {}", a.function, a.object, a.error);
        break;
      }
    return fail("no allocator probe could be attached ({})", first_error);
  }

  if (cfg.trace) {
    auto r = RingBuffer::Open(bpf_map__fd(s->maps.events), "the trace ring buffer");
    if (!r) return std::unexpected(r.error());
    p->events_ = std::move(*r);
  }
  if (cfg.unwind_dwarf) {
    auto r = RingBuffer::Open(bpf_map__fd(s->maps.snapshots), "the snapshot ring buffer");
    if (!r) return std::unexpected(r.error());
    p->snapshots_ = std::move(*r);
  }
  if (cfg.hook_ring) {
    auto r = RingBuffer::Open(bpf_map__fd(s->maps.hook_events), "the in-process event ring buffer");
    if (!r) return std::unexpected(r.error());
    p->hook_events_ = std::move(*r);
  }
  return p;
}

int MemleakProbe::poll_hook_events(
    const std::function<void(const lw_hook_event&, size_t len)>& on_event) {
  if (!hook_events_) return 0;
  return hook_events_->consume([&](const void* data, size_t len) {
    if (len < LW_HOOK_EVENT_HEADER) return;
    // The record holds the header and its frames only: copy into a whole struct.
    lw_hook_event ev;
    std::memcpy(&ev, data, std::min(len, sizeof(ev)));
    on_event(ev, len);
  });
}

int MemleakProbe::hook_events_fd() const { return hook_events_ ? hook_events_->epoll_fd() : -1; }

int MemleakProbe::poll_snapshots(int timeout_ms,
                                 const std::function<void(const lw_stack_snapshot&)>& on_snapshot) {
  if (!snapshots_) return 0;
  RingBuffer::Handler h = [&](const void* data, size_t len) {
    if (len < LW_SNAPSHOT_HEADER_SIZE) return;
    // The record holds the header and stack_size bytes; the struct's tail is not there, so
    // copy into a whole struct before handing it on.
    static thread_local lw_stack_snapshot snap;
    std::memcpy(&snap, data, std::min(len, sizeof(snap)));
    if (snap.stack_size > len - LW_SNAPSHOT_HEADER_SIZE)
      snap.stack_size = static_cast<uint32_t>(len - LW_SNAPSHOT_HEADER_SIZE);
    on_snapshot(snap);
  };
  // The BPF side writes snapshots without wakeups (each would cost the traced thread an
  // irq_work), so epoll never reports them: consume what is there, then wait if asked to.
  int n = snapshots_->consume(h);
  if (n == 0 && timeout_ms > 0) {
    ::usleep(static_cast<useconds_t>(timeout_ms) * 1000);
    n = snapshots_->consume(h);
  }
  return n;
}

Result<void> MemleakProbe::attach_objects(const std::vector<alloc::ObjectPlan>& objects) {
  std::vector<alloc::ObjectPlan> fresh;
  for (const auto& obj : objects) {
    if (obj.inode && std::find(attached_inodes_.begin(), attached_inodes_.end(), obj.inode) !=
                         attached_inodes_.end())
      continue;
    fresh.push_back(obj);
    if (obj.defines_malloc && obj.inode) {
      uint32_t one = 1;
      if (bpf_map_update_elem(bpf_map__fd(skel_->maps.allocator_inodes), &obj.inode, &one, BPF_ANY))
        log::warn("cannot register allocator object {}: {}", obj.display_path, std::strerror(errno));
    }
  }
  // Every release function first, then the allocation functions: an allocation recorded
  // once its probe is live is never freed unseen.
  for (Phase phase : {Phase::kRelease, Phase::kAllocate}) {
    for (const auto& obj : fresh) {
      auto r = session_ ? attach_session(obj, pid_, phase) : attach_classic(obj, pid_, phase);
      if (!r) return std::unexpected(r.error());
      if (attach_pause_us_) ::usleep(attach_pause_us_);
    }
  }
  for (const auto& obj : fresh)
    if (obj.inode) attached_inodes_.push_back(obj.inode);
  return {};
}

Result<void> MemleakProbe::attach_session(const alloc::ObjectPlan& obj, int pid, Phase phase) {
  struct Group {
    int prog_fd;
    uint32_t attach_type;
    std::vector<const alloc::ProbeSite*> sites;
  };
  Group allocs{bpf_program__fd(skel_->progs.lw_alloc_session), kAttachUprobeSession, {}};
  Group frees{bpf_program__fd(skel_->progs.lw_free_multi), kAttachUprobeMulti, {}};
  Group hook_allocs{bpf_program__fd(skel_->progs.lw_hook_alloc), kAttachUprobeMulti, {}};
  Group hook_frees{bpf_program__fd(skel_->progs.lw_hook_free), kAttachUprobeMulti, {}};
  for (const auto& site : obj.sites) {
    if (is_release(site.kind) != (phase == Phase::kRelease)) continue;
    if (!site.skipped_reason.empty()) {
      attach_results_.push_back({obj.display_path, site.function, site.file_offset(), false,
                                 false, site.skipped_reason, true});
      continue;
    }
    Group& g = site.kind == LW_FN_HOOK_ALLOC ? hook_allocs
               : site.kind == LW_FN_HOOK_FREE ? hook_frees
               : is_alloc(site.kind)          ? allocs
                                              : frees;
    g.sites.push_back(&site);
  }
  for (Group* g : {&frees, &hook_frees, &allocs, &hook_allocs}) {
    if (g->sites.empty()) continue;
    std::vector<uint64_t> offsets, cookies;
    for (const alloc::ProbeSite* site : g->sites) {
      offsets.push_back(site->file_offset());
      cookies.push_back(site->kind);
    }
    int fd = create_uprobe_multi_link(g->prog_fd, g->attach_type, obj.path, offsets, cookies,
                                      pid, false);
    if (fd >= 0) {
      link_fds_.emplace_back(fd);
      for (const alloc::ProbeSite* site : g->sites)
        attach_results_.push_back({obj.display_path, site->function, site->file_offset(),
                                   site->placement.emulated, true, "", false});
      continue;
    }
    if (fd == -ESRCH) return fail("no such process: {}", pid);
    // The batch failed: attach one by one so each failure is counted against its function.
    for (const alloc::ProbeSite* site : g->sites) {
      std::vector<uint64_t> one_off{site->file_offset()}, one_cookie{site->kind};
      int f = create_uprobe_multi_link(g->prog_fd, g->attach_type, obj.path, one_off,
                                       one_cookie, pid, false);
      AttachResult ar{obj.display_path, site->function, site->file_offset(),
                      site->placement.emulated, f >= 0, "", false};
      if (f >= 0)
        link_fds_.emplace_back(f);
      else
        ar.error = std::strerror(-f);
      attach_results_.push_back(std::move(ar));
    }
  }
  return {};
}

Result<void> MemleakProbe::attach_classic(const alloc::ObjectPlan& obj, int pid, Phase phase) {
  for (const auto& site : obj.sites) {
    if (is_release(site.kind) != (phase == Phase::kRelease)) continue;
    if (!site.skipped_reason.empty()) {
      attach_results_.push_back({obj.display_path, site.function, site.file_offset(), false,
                                 false, site.skipped_reason, true});
      continue;
    }
    AttachResult ar{obj.display_path, site.function, site.file_offset(),
                    site.placement.emulated, true, "", false};
    auto attach = [&](bpf_program* prog, bool ret) -> bool {
      LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = site.kind, .retprobe = ret);
      bpf_link* l = bpf_program__attach_uprobe_opts(prog, pid > 0 ? pid : -1, obj.path.c_str(),
                                                    site.file_offset(), &opts);
      if (!l) {
        ar.error = std::strerror(errno);
        return false;
      }
      classic_links_.emplace_back(l);
      if (attach_pause_us_) ::usleep(attach_pause_us_);
      return true;
    };
    if (site.kind == LW_FN_HOOK_ALLOC) {
      ar.ok = attach(skel_->progs.lw_hook_alloc, false);
    } else if (site.kind == LW_FN_HOOK_FREE) {
      ar.ok = attach(skel_->progs.lw_hook_free, false);
    } else if (is_alloc(site.kind)) {
      ar.ok = attach(skel_->progs.lw_alloc_entry, false) &&
              attach(skel_->progs.lw_alloc_return, true);
    } else {
      ar.ok = attach(skel_->progs.lw_free_entry, false);
    }
    attach_results_.push_back(std::move(ar));
  }
  return {};
}

size_t MemleakProbe::failed_attaches() const {
  size_t n = 0;
  for (const auto& a : attach_results_) n += !a.ok && !a.skipped;
  return n;
}

Result<std::vector<OutstandingAlloc>> MemleakProbe::read_allocs() const {
  auto entries = read_hash_map<lw_alloc_key, lw_alloc_info>(bpf_map__fd(skel_->maps.allocs),
                                                             "the allocs map");
  if (!entries) return std::unexpected(entries.error());
  std::vector<OutstandingAlloc> out;
  out.reserve(entries->size());
  for (const auto& [k, v] : *entries)
    out.push_back({k.addr, k.tgid, v.size, v.timestamp_ns, v.stack_id, v.kind});
  return out;
}

Result<std::vector<CombinedEntry>> MemleakProbe::read_combined() const {
  auto entries = read_hash_map<lw_combined_key, lw_combined>(bpf_map__fd(skel_->maps.combined),
                                                              "the per-stack totals map");
  if (!entries) return std::unexpected(entries.error());
  std::vector<CombinedEntry> out;
  for (const auto& [k, v] : *entries)
    if (v.number_of_allocs > 0) out.push_back({k.tgid, k.stack_id, v.total_size, v.number_of_allocs});
  return out;
}

std::vector<uint64_t> MemleakProbe::read_stack(int32_t stack_id) const {
  if (stack_id < 0) return {};
  uint32_t id = static_cast<uint32_t>(stack_id);
  return read_stack_ips(bpf_map__fd(skel_->maps.stack_traces), &id, LW_MAX_STACK_DEPTH);
}

Counters MemleakProbe::read_counters() const {
  return sum_percpu_counters<LW_CNT_MAX>(bpf_map__fd(skel_->maps.counters));
}

int MemleakProbe::poll_events(int timeout_ms,
                              const std::function<void(const lw_event&)>& on_event) {
  if (!events_) return 0;
  return events_->poll(timeout_ms, [&](const void* data, size_t len) {
    if (len >= sizeof(lw_event)) on_event(*static_cast<const lw_event*>(data));
  });
}

MemleakProbe::RunStats MemleakProbe::run_stats() const {
  RunStats st;
  for (const auto& p : program_run_stats(skel_->obj)) {
    st.run_time_ns += p.run_time_ns;
    st.run_cnt += p.run_cnt;
  }
  return st;
}

}  // namespace leakwatch::probe
