// SPDX-License-Identifier: GPL-2.0
/* leakwatch kernel-mode memleak: the kmem and percpu tracepoints (no kprobes needed).
 *
 *   kmem:kmalloc, kmem:kmem_cache_alloc   -> record (slab space, bytes_alloc)
 *   kmem:kfree, kmem:kmem_cache_free      -> release (slab space)
 *   kmem:mm_page_alloc                    -> record (page space: pfn, PAGE_SIZE << order)
 *   kmem:mm_page_free                     -> release (page space)
 *   kmem:mm_page_free_batched             -> release (page space).  Pages freed in batches
 *       (munmap, page-cache reclaim: free_unref_folios) report only here; a tool that does
 *       not trace it sees them as leaks forever.
 *   percpu:percpu_alloc_percpu / percpu_free_percpu (with --percpu, instead of the above,
 *       as BCC does; size = the requested size, as BCC reports it)
 *
 * Allocations are kept by (address, space) with the kernel stack (bpf_get_stack without
 * BPF_F_USER_STACK) stored by a hash of its frames.  --wa-missing-free (BCC): the slab
 * allocation handlers first release whatever is still recorded at the returned address,
 * as if its free had been seen; without it the entry is replaced but the per-stack totals
 * keep the old allocation (BCC's behaviour), and KLW_CNT_REPLACED counts it either way.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/kmemleak.h"
#define LW_COUNTERS_MAX KLW_CNT_MAX
#include "bpf/alloc_sampling.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 wa_missing_free = 0;
const volatile __u32 page_shift = 12;
/* 1: mm_page_free_batched releases pages (0 only to compare with BCC, which ignores it). */
const volatile __u32 batched_free = 1;
/* Non-zero: record only allocations made while this process is current (tests and
 * experiments on a busy machine); frees are never filtered. */
const volatile __u32 only_tgid = 0;

/* Preallocated, unlike user mode's: a map that allocates elements on demand refills its
 * cache with kmalloc from irq_work, outside the program, where kmem:kmalloc sees it; each
 * recorded refill needs another element, and the map feeds on itself (measured: ~120k
 * allocations/s of bpf_mem_refill until the map was full). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1000000);
  __type(key, struct klw_alloc_key);
  __type(value, struct klw_alloc_info);
} allocs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct klw_stack);
} stacks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct klw_combined);
} combined SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct klw_stack);
} scratch SEC(".maps");

static __always_inline void emit(__u64 addr, __u64 size, __u32 source, __u32 type)
{
  struct klw_event e = {
      .ts = bpf_ktime_get_ns(), .addr = addr, .size = size,
      .tgid = bpf_get_current_pid_tgid() >> 32, .source = source, .type = type,
  };
  if (bpf_ringbuf_output(&events, &e, sizeof(e), 0))
    count(KLW_CNT_EVENTS_LOST);
}

static __always_inline void combined_add(__u64 stack_hash, __s64 size, __s64 n)
{
  struct klw_combined *c = bpf_map_lookup_elem(&combined, &stack_hash);
  if (!c) {
    if (n < 0)
      return;
    struct klw_combined init = {};
    bpf_map_update_elem(&combined, &stack_hash, &init, BPF_NOEXIST);
    c = bpf_map_lookup_elem(&combined, &stack_hash);
    if (!c) {
      count(KLW_CNT_COMBINED_FULL);
      return;
    }
  }
  __sync_fetch_and_add(&c->total_size, size);
  __sync_fetch_and_add(&c->number_of_allocs, n);
}

/* Captures the current kernel stack into the stacks map; returns its hash, 0 when lost.
 * That map allocates on demand (an element is ~1 KiB), but only for a stack not seen
 * before: the refills it causes come from a handful of stacks, so they do not feed back. */
static __always_inline __u64 store_stack(void *ctx)
{
  __u32 zero = 0;
  struct klw_stack *st = bpf_map_lookup_elem(&scratch, &zero);
  if (!st)
    return 0;
  long n = bpf_get_stack(ctx, st->ips, sizeof(st->ips), 0);
  if (n <= 0)
    return 0;
  __u32 depth = (__u32)n / sizeof(__u64);
  st->depth = depth;
  /* FNV-1a over the frames. */
  __u64 h = 0xcbf29ce484222325ULL;
  for (__u32 i = 0; i < KLW_MAX_STACK_DEPTH; i++) {
    if (i >= depth)
      break;
    h ^= st->ips[i];
    h *= 0x100000001b3ULL;
  }
  h ^= depth;
  if (h == 0)
    h = 1;
  long err = bpf_map_update_elem(&stacks, &h, st, BPF_NOEXIST);
  if (err && err != -17 /* EEXIST: already stored */)
    return 0;
  return h;
}

static __always_inline bool release(__u64 addr, __u32 space, __u32 source)
{
  struct klw_alloc_key key = {.addr = addr, .space = space};
  struct klw_alloc_info *info = bpf_map_lookup_elem(&allocs, &key);
  if (!info)
    return false;
  __u64 size = info->size;
  __u64 stack = info->stack_hash;
  if (bpf_map_delete_elem(&allocs, &key))
    return false; /* another CPU released it first */
  combined_add(stack, -(__s64)size, -1);
  count(KLW_CNT_FREED);
  if (trace_events)
    emit(addr, size, source, 1);
  return true;
}

static __always_inline void record(void *ctx, __u64 addr, __u32 space, __u64 size,
                                   __u32 source, bool wa)
{
  if (wa)
    release(addr, space, source);
  if (only_tgid && (bpf_get_current_pid_tgid() >> 32) != only_tgid)
    return;
  if (!sample_decision(size))
    return;
  count(KLW_CNT_SAMPLED);

  struct klw_alloc_key key = {.addr = addr, .space = space};
  struct klw_alloc_info info = {
      .size = size, .timestamp_ns = bpf_ktime_get_ns(),
      .tgid = bpf_get_current_pid_tgid() >> 32, .source = source,
  };
  info.stack_hash = store_stack(ctx);
  if (!info.stack_hash)
    count(KLW_CNT_STACK_LOST);
  if (bpf_map_lookup_elem(&allocs, &key))
    count(KLW_CNT_REPLACED);
  if (bpf_map_update_elem(&allocs, &key, &info, BPF_ANY)) {
    count(KLW_CNT_ALLOCS_FULL);
    return;
  }
  count(KLW_CNT_RECORDED);
  combined_add(info.stack_hash, size, 1);
  if (trace_events)
    emit(addr, size, source, 0);
}

SEC("tracepoint/kmem/kmalloc")
int klw_kmalloc(struct trace_event_raw_kmalloc *ctx)
{
  count(KLW_CNT_KMALLOC);
  __u64 ptr = (__u64)ctx->ptr;
  if (ptr)
    record(ctx, ptr, KLW_SPACE_SLAB, ctx->bytes_alloc, KLW_SRC_KMALLOC, wa_missing_free);
  return 0;
}

SEC("tracepoint/kmem/kmem_cache_alloc")
int klw_kmem_cache_alloc(struct trace_event_raw_kmem_cache_alloc *ctx)
{
  count(KLW_CNT_KMEM_CACHE_ALLOC);
  __u64 ptr = (__u64)ctx->ptr;
  if (ptr)
    record(ctx, ptr, KLW_SPACE_SLAB, ctx->bytes_alloc, KLW_SRC_KMEM_CACHE, wa_missing_free);
  return 0;
}

SEC("tracepoint/kmem/kfree")
int klw_kfree(struct trace_event_raw_kfree *ctx)
{
  count(KLW_CNT_KFREE);
  __u64 ptr = (__u64)ctx->ptr;
  if (ptr)
    release(ptr, KLW_SPACE_SLAB, KLW_SRC_KMALLOC);
  return 0;
}

SEC("tracepoint/kmem/kmem_cache_free")
int klw_kmem_cache_free(struct trace_event_raw_kmem_cache_free *ctx)
{
  count(KLW_CNT_KMEM_CACHE_FREE);
  __u64 ptr = (__u64)ctx->ptr;
  if (ptr)
    release(ptr, KLW_SPACE_SLAB, KLW_SRC_KMEM_CACHE);
  return 0;
}

SEC("tracepoint/kmem/mm_page_alloc")
int klw_page_alloc(struct trace_event_raw_mm_page_alloc *ctx)
{
  count(KLW_CNT_PAGE_ALLOC);
  __u64 pfn = ctx->pfn;
  if (pfn != ~0ULL) /* -1UL: the allocation failed */
    record(ctx, pfn, KLW_SPACE_PAGE, (1ULL << page_shift) << (ctx->order & 31), KLW_SRC_PAGE, false);
  return 0;
}

SEC("tracepoint/kmem/mm_page_free")
int klw_page_free(struct trace_event_raw_mm_page_free *ctx)
{
  count(KLW_CNT_PAGE_FREE);
  release(ctx->pfn, KLW_SPACE_PAGE, KLW_SRC_PAGE);
  return 0;
}

SEC("tracepoint/kmem/mm_page_free_batched")
int klw_page_free_batched(struct trace_event_raw_mm_page_free_batched *ctx)
{
  count(KLW_CNT_PAGE_FREE_BATCHED);
  if (batched_free && release(ctx->pfn, KLW_SPACE_PAGE, KLW_SRC_PAGE))
    count(KLW_CNT_FREED_BATCHED);
  return 0;
}

SEC("tracepoint/percpu/percpu_alloc_percpu")
int klw_percpu_alloc(struct trace_event_raw_percpu_alloc_percpu *ctx)
{
  count(KLW_CNT_PERCPU_ALLOC);
  __u64 ptr = (__u64)ctx->ptr;
  if (ptr)
    record(ctx, ptr, KLW_SPACE_PERCPU, ctx->size, KLW_SRC_PERCPU, false);
  return 0;
}

SEC("tracepoint/percpu/percpu_free_percpu")
int klw_percpu_free(struct trace_event_raw_percpu_free_percpu *ctx)
{
  count(KLW_CNT_PERCPU_FREE);
  __u64 ptr = (__u64)ctx->ptr;
  if (ptr)
    release(ptr, KLW_SPACE_PERCPU, KLW_SRC_PERCPU);
  return 0;
}
