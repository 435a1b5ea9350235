#include "probe/kernel_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpf/sampling_table.h"
#include "common/log.h"
#include "kmemleak.skel.h"
#include "probe/tracefs.h"

namespace leakwatch::probe {
namespace {

static_assert(sizeof(klw_alloc_key) == 16);
static_assert(sizeof(klw_alloc_info) == 32);
static_assert(sizeof(klw_combined) == 16);
static_assert(sizeof(klw_stack) == 8 + 8 * KLW_MAX_STACK_DEPTH);
static_assert(sizeof(klw_event) == 40);

struct Tracepoint {
  const char* category;
  const char* name;
  bool percpu;    // part of --percpu mode (else of the default mode)
  bool required;  // the mode makes no sense without it
};

constexpr Tracepoint kTracepoints[] = {
    {"kmem", "kmalloc", false, true},
    {"kmem", "kmem_cache_alloc", false, false},
    {"kmem", "kfree", false, true},
    {"kmem", "kmem_cache_free", false, false},
    {"kmem", "mm_page_alloc", false, false},
    {"kmem", "mm_page_free", false, false},
    {"kmem", "mm_page_free_batched", false, false},
    {"percpu", "percpu_alloc_percpu", true, true},
    {"percpu", "percpu_free_percpu", true, true},
};

bpf_program* program_for(kmemleak_bpf* s, const std::string& name) {
  if (name == "kmalloc") return s->progs.klw_kmalloc;
  if (name == "kmem_cache_alloc") return s->progs.klw_kmem_cache_alloc;
  if (name == "kfree") return s->progs.klw_kfree;
  if (name == "kmem_cache_free") return s->progs.klw_kmem_cache_free;
  if (name == "mm_page_alloc") return s->progs.klw_page_alloc;
  if (name == "mm_page_free") return s->progs.klw_page_free;
  if (name == "mm_page_free_batched") return s->progs.klw_page_free_batched;
  if (name == "percpu_alloc_percpu") return s->progs.klw_percpu_alloc;
  if (name == "percpu_free_percpu") return s->progs.klw_percpu_free;
  return nullptr;
}

}  // namespace

const char* source_name(uint32_t source) {
  switch (source) {
    case KLW_SRC_KMALLOC: return "kmalloc";
    case KLW_SRC_KMEM_CACHE: return "kmem_cache_alloc";
    case KLW_SRC_PAGE: return "page";
    case KLW_SRC_PERCPU: return "percpu";
    default: return "?";
  }
}

void KernelProbe::SkelDeleter::operator()(kmemleak_bpf* s) const { kmemleak_bpf__destroy(s); }

KernelProbe::~KernelProbe() = default;

Result<std::unique_ptr<KernelProbe>> KernelProbe::Create(const KernelConfig& cfg) {
  std::unique_ptr<KernelProbe> p(new KernelProbe());
  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  set_btf_path(open_opts, cfg.btf_path);
  kmemleak_bpf* raw = kmemleak_bpf__open_opts(&open_opts);
  if (!raw) return fail_errno("cannot open the kernel memleak BPF object");
  p->skel_.reset(raw);
  auto* s = p->skel_.get();

  if (auto r = set_alloc_sampling(s->rodata, cfg.sampling); !r) return std::unexpected(r.error());
  s->rodata->trace_events = cfg.trace ? 1 : 0;
  s->rodata->wa_missing_free = cfg.wa_missing_free ? 1 : 0;
  s->rodata->batched_free = cfg.batched_free ? 1 : 0;
  s->rodata->only_tgid = cfg.only_tgid;
  s->rodata->page_shift = page_shift();
  bpf_map__set_max_entries(s->maps.allocs, cfg.max_allocs);
  bpf_map__set_max_entries(s->maps.stacks, cfg.max_stacks);
  bpf_map__set_max_entries(s->maps.combined, cfg.max_stacks);
  if (cfg.trace) bpf_map__set_max_entries(s->maps.events, 4u << 20);

  // Only the mode's tracepoints are loaded, and only those this kernel has.
  std::vector<const Tracepoint*> wanted;
  for (const auto& tp : kTracepoints) {
    bpf_program* prog = program_for(s, tp.name);
    bool in_mode = tp.percpu == cfg.percpu;
    bool exists = in_mode && tracepoint_exists(tp.category, tp.name);
    bpf_program__set_autoload(prog, in_mode && exists);
    if (!in_mode) continue;
    if (!exists) {
      if (tp.required)
        return fail("this kernel has no tracepoint {}:{} (needed for kernel-mode memleak)",
                    tp.category, tp.name);
      p->attach_results_.push_back({std::string(tp.category) + ":" + tp.name, false,
                                    "no such tracepoint on this kernel"});
      continue;
    }
    wanted.push_back(&tp);
  }

  if (int err = kmemleak_bpf__load(s); err)
    return std::unexpected(load_error("the kernel memleak BPF programs", err, cfg.btf_path));

  for (const Tracepoint* tp : wanted) {
    KernelAttach a{std::string(tp->category) + ":" + tp->name, false, ""};
    bpf_link* l = bpf_program__attach_tracepoint(program_for(s, tp->name), tp->category, tp->name);
    if (!l) {
      a.error = std::strerror(errno);
      if (tp->required) return fail("cannot attach to tracepoint {}: {}", a.tracepoint, a.error);
    } else {
      a.ok = true;
      p->links_.emplace_back(l);
    }
    p->attach_results_.push_back(std::move(a));
  }

  if (cfg.trace) {
    auto r = RingBuffer::Open(bpf_map__fd(s->maps.events), "the trace ring buffer");
    if (!r) return std::unexpected(r.error());
    p->events_ = std::move(*r);
  }
  return p;
}

size_t KernelProbe::failed_attaches() const {
  size_t n = 0;
  for (const auto& a : attach_results_) n += !a.ok;
  return n;
}

Result<std::vector<KernelAlloc>> KernelProbe::read_allocs() const {
  auto entries = read_hash_map<klw_alloc_key, klw_alloc_info>(bpf_map__fd(skel_->maps.allocs),
                                                               "the allocs map");
  if (!entries) return std::unexpected(entries.error());
  std::vector<KernelAlloc> out;
  out.reserve(entries->size());
  for (const auto& [k, v] : *entries)
    out.push_back({k.addr, k.space, v.size, v.timestamp_ns, v.stack_hash, v.tgid, v.source});
  return out;
}

Result<std::vector<KernelCombined>> KernelProbe::read_combined() const {
  auto entries = read_hash_map<uint64_t, klw_combined>(bpf_map__fd(skel_->maps.combined),
                                                        "the per-stack totals map");
  if (!entries) return std::unexpected(entries.error());
  std::vector<KernelCombined> out;
  for (const auto& [k, v] : *entries)
    if (v.number_of_allocs > 0) out.push_back({k, v.total_size, v.number_of_allocs});
  return out;
}

std::vector<uint64_t> KernelProbe::read_stack(uint64_t stack_hash) const {
  std::vector<uint64_t> frames;
  if (stack_hash == 0) return frames;
  klw_stack st{};
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.stacks), &stack_hash, &st) != 0) return frames;
  for (uint32_t i = 0; i < st.depth && i < KLW_MAX_STACK_DEPTH; i++) {
    if (st.ips[i] == 0) break;
    frames.push_back(st.ips[i]);
  }
  return frames;
}

KernelCounters KernelProbe::read_counters() const {
  return sum_percpu_counters<KLW_CNT_MAX>(bpf_map__fd(skel_->maps.counters));
}

int KernelProbe::poll_events(int timeout_ms, const std::function<void(const klw_event&)>& on_event) {
  if (!events_) return 0;
  return events_->poll(timeout_ms, [&](const void* data, size_t len) {
    if (len >= sizeof(klw_event)) on_event(*static_cast<const klw_event*>(data));
  });
}

}  // namespace leakwatch::probe
