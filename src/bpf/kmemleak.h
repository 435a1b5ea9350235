/* Types shared by kmemleak.bpf.c (kernel-mode memleak) and user space (src/probe).
 * Fixed-width fields only; user space static_asserts the sizes.  Plain C. */
#ifndef LEAKWATCH_BPF_KMEMLEAK_H
#define LEAKWATCH_BPF_KMEMLEAK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define KLW_MAX_STACK_DEPTH 127

/* Which allocator an allocation came from (and which tracepoint saw it). */
enum klw_source {
  KLW_SRC_KMALLOC = 0,    /* kmem:kmalloc */
  KLW_SRC_KMEM_CACHE = 1, /* kmem:kmem_cache_alloc */
  KLW_SRC_PAGE = 2,       /* kmem:mm_page_alloc (address = pfn, size = PAGE_SIZE << order) */
  KLW_SRC_PERCPU = 3,     /* percpu:percpu_alloc_percpu */
  KLW_SRC_MAX = 4,
};

/* Address spaces: kfree() frees kmalloc and kmem_cache objects alike, so both are "slab";
 * page frame numbers and percpu pointers are separate spaces that may hold equal values. */
enum klw_space {
  KLW_SPACE_SLAB = 0,
  KLW_SPACE_PAGE = 1,
  KLW_SPACE_PERCPU = 2,
};

enum klw_counter {
  KLW_CNT_KMALLOC = 0,          /* tracepoint hits, per event */
  KLW_CNT_KMEM_CACHE_ALLOC,
  KLW_CNT_PAGE_ALLOC,
  KLW_CNT_PERCPU_ALLOC,
  KLW_CNT_KFREE,
  KLW_CNT_KMEM_CACHE_FREE,
  KLW_CNT_PAGE_FREE,
  KLW_CNT_PAGE_FREE_BATCHED,
  KLW_CNT_PERCPU_FREE,
  KLW_CNT_SAMPLED,              /* allocations selected by sampling and size filters */
  KLW_CNT_RECORDED,             /* allocations recorded in the allocs map */
  KLW_CNT_FREED,                /* tracked allocations released (any free event) */
  KLW_CNT_FREED_BATCHED,        /* ... of which by mm_page_free_batched */
  KLW_CNT_REPLACED,             /* an allocation at an address still outstanding: its free
                                   was missed (--wa-missing-free releases it first) */
  KLW_CNT_ALLOCS_FULL,          /* LOSS: allocs map full, allocation not tracked */
  KLW_CNT_STACK_LOST,           /* LOSS: stack could not be captured or stored */
  KLW_CNT_COMBINED_FULL,        /* LOSS: per-stack totals map full */
  KLW_CNT_EVENTS_LOST,          /* LOSS: trace ring buffer full (-t) */
  KLW_CNT_MAX,
};

struct klw_alloc_key {
  __u64 addr;
  __u32 space;   /* enum klw_space */
  __u32 pad;
};

struct klw_alloc_info {
  __u64 size;
  __u64 timestamp_ns;  /* bpf_ktime_get_ns() */
  __u64 stack_hash;    /* key in the stacks map; 0: stack lost */
  __u32 tgid;          /* process current at the allocation (0 in interrupts/kthreads too) */
  __u32 source;        /* enum klw_source */
};

struct klw_combined {
  __u64 total_size;
  __u64 number_of_allocs;
};

/* A kernel stack, innermost first.  Stacks are kept by a 64-bit hash of their frames in a
 * hash map (rather than a STACK_TRACE map, whose buckets drop a new stack on collision). */
struct klw_stack {
  __u32 depth;
  __u32 pad;
  __u64 ips[KLW_MAX_STACK_DEPTH];
};

/* Trace events (-t) */
struct klw_event {
  __u64 ts;
  __u64 addr;
  __u64 size;
  __u32 tgid;
  __u32 source;
  __u32 type;  /* 0 alloc, 1 free */
  __u32 pad;
};

#endif
