/* Types shared by memleak.bpf.c and user space (src/probe).  Fixed-width fields only;
 * user space static_asserts the sizes.  Plain C: included by clang -target bpf and g++. */
#ifndef LEAKWATCH_BPF_MEMLEAK_H
#define LEAKWATCH_BPF_MEMLEAK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LW_MAX_STACK_DEPTH 127

/* What a probed function is; passed to the programs as the attach cookie. */
enum lw_fn_kind {
  LW_FN_NONE = 0,
  /* allocation functions (entry + return) */
  LW_FN_MALLOC = 1,         /* size = arg0 */
  LW_FN_CALLOC = 2,         /* size = arg0 * arg1 */
  LW_FN_REALLOC = 3,        /* old = arg0, size = arg1 */
  LW_FN_REALLOCARRAY = 4,   /* old = arg0, size = arg1 * arg2 */
  LW_FN_POSIX_MEMALIGN = 5, /* *arg0 = result, size = arg2, returns 0 on success */
  LW_FN_ALIGNED_ALLOC = 6,  /* size = arg1 (aligned_alloc, memalign) */
  LW_FN_VALLOC = 7,         /* size = arg0 (valloc, pvalloc) */
  LW_FN_NEW = 8,            /* size = arg0 (every operator new / new[] form) */
  LW_FN_MMAP = 9,           /* size = arg1, fails with MAP_FAILED */
  LW_FN_MREMAP = 10,        /* old = arg0, size = arg2, fails with MAP_FAILED */
  /* in-process mode: the preload library's hooks (bpf/preload_abi.h), entry only */
  LW_FN_HOOK_ALLOC = 11,    /* ptr = arg0, size = arg1: an allocation sampled in-process */
  /* release functions (entry only) */
  LW_FN_FREE = 16,          /* ptr = arg0 (free, every operator delete form) */
  LW_FN_MUNMAP = 17,        /* ptr = arg0 */
  LW_FN_HOOK_FREE = 18,     /* ptr = arg0: a block sampled in-process is released */
  LW_FN_KIND_MAX = 19,
};

/* Loss and activity counters (a per-CPU array indexed by these). */
enum lw_counter {
  LW_CNT_ALLOC_CALLS = 0,     /* allocation probe hits (entry) */
  LW_CNT_FREE_CALLS,          /* release probe hits */
  LW_CNT_RETURN_CALLS,        /* return probe runs */
  LW_CNT_SAMPLED,             /* allocations selected by sampling */
  LW_CNT_RECORDED,            /* allocations recorded in the allocs map */
  LW_CNT_NESTED,              /* calls made inside another probed call (counted once) */
  LW_CNT_INTERNAL_MAP,        /* mmap/munmap/mremap made by the allocator itself */
  LW_CNT_FAILED_ALLOCS,       /* allocation functions that returned failure */
  LW_CNT_FREED,               /* tracked allocations released */
  LW_CNT_ALLOCS_FULL,         /* LOSS: allocs map full, allocation not tracked */
  LW_CNT_STACK_LOST,          /* LOSS: stack could not be stored (map full / collision) */
  LW_CNT_COMBINED_FULL,       /* LOSS: per-stack totals map full */
  LW_CNT_STATE_FULL,          /* LOSS: per-thread state map full, call not tracked */
  LW_CNT_EVENTS_LOST,         /* LOSS: trace ring buffer full (-t) */
  LW_CNT_SNAPSHOTS,           /* stack snapshots sent for DWARF unwinding */
  LW_CNT_SNAPSHOT_BYTES,      /* bytes of user stack copied into them */
  LW_CNT_SNAPSHOTS_LOST,      /* LOSS: snapshot ring buffer full */
  LW_CNT_HOOK_EVENTS_LOST,    /* LOSS: in-process event ring full (a sample or a free) */
  LW_CNT_MAX,
};

struct lw_alloc_key {
  __u64 addr;
  __u32 tgid;
  __u32 pad;
};

struct lw_alloc_info {
  __u64 size;
  __u64 timestamp_ns;  /* bpf_ktime_get_ns() at return */
  __s32 stack_id;      /* < 0: stack lost */
  __u32 kind;          /* enum lw_fn_kind of the outermost call */
};

struct lw_combined {
  __u64 total_size;
  __u64 number_of_allocs;
};

struct lw_combined_key {
  __u32 tgid;
  __s32 stack_id;
};

/* Per-thread state of an allocation call between entry and return. */
struct lw_thread_state {
  __u64 sp;          /* stack pointer at entry of the outermost call */
  __u64 ts;          /* entry time */
  __u64 size;
  __u64 old_ptr;     /* realloc family: block being resized */
  __u64 memptr;      /* posix_memalign: where the result is stored */
  __u32 kind;
  __u32 active;      /* 1 between the entry and the return of a tracked outer call */
  __u32 sampled;     /* the outer call is recorded at its return */
  __u32 pad;
};

/* In-process mode with sampling: what the preload library's hooks report, one ring record
 * each, for user space to keep the outstanding blocks and their stacks.  The record holds
 * the header and `depth` frames (innermost first: the return address in the caller of
 * malloc/new first); a free carries no frames. */
#define LW_HOOK_EV_ALLOC 1
#define LW_HOOK_EV_FREE 2

/* What every record holds; a free, or an allocation whose stack is lost, is just this. */
struct lw_hook_header {
  __u64 addr;
  __u64 size;        /* alloc: the requested size */
  __u64 ts;          /* alloc: bpf_ktime_get_ns() */
  __u32 tgid;
  __u32 type;        /* LW_HOOK_EV_* */
  __u32 depth;       /* frames in ips[] (alloc); 0 when the stack was lost */
  __u32 pad;
};

/* Bytes before the frames. */
#define LW_HOOK_EVENT_HEADER 40

struct lw_hook_event {
  struct lw_hook_header h;
  __u64 ips[LW_MAX_STACK_DEPTH];
};

/* Trace events (-t) */
struct lw_event {
  __u64 ts;
  __u64 addr;
  __u64 size;
  __u32 tgid;
  __u32 tid;
  __u32 kind;
  __u32 type;  /* 0 alloc, 1 free */
};

#endif
