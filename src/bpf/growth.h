/* Types shared by growth.bpf.c and user space (src/probe/growth_probe).  Fixed-width fields
 * only; user space static_asserts the sizes.  Plain C: included by clang -target bpf and g++.
 *
 * What the BPF side keeps:
 *
 *   page_fault_user ──filter──> counter (every fault)
 *        │ sampled 1 in N
 *        └─> user stack ──> events ring buffer {address, error code, stack}
 *
 *   sys_enter/exit mmap, munmap, mremap, brk ──> events ring buffer (with the stack of the
 *        call)
 *
 *   with DWARF unwinding (unwind_dwarf) a stack is not walked in BPF: the event record
 *   carries a copy of the top of the user stack (LW_GR_SNAPSHOT_STACK), unwound in user space
 *
 *   user space, in event order: the mapped regions as intervals (partial unmaps, moves),
 *   and each sampled fault classified anonymous or file-backed by the region it hit.
 *
 *   rss_stat (current mm) ──> rss map: tgid -> first / current / peak bytes per RSS member
 */
#ifndef LEAKWATCH_BPF_GROWTH_H
#define LEAKWATCH_BPF_GROWTH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Frames kept per stack, both walkers (the kernel's and leakwatch's own). */
#define LW_GR_MAX_DEPTH 64

/* Stack value meaning "no stack" (capture failed, map full). */
#define LW_GR_NO_STACK 0xffffffffffffffffULL
/* Stack value of an event followed by its user-stack snapshot (rodata unwind_dwarf): the
 * ring record is the lw_gr_event, then the lw_stack_snapshot header and stack_size bytes
 * (bpf/unwind.h).  User space unwinds it and replaces the value by its own stack key. */
#define LW_GR_SNAPSHOT_STACK 0xfffffffffffffffeULL

/* How user stacks are captured (rodata stack_walker). */
enum lw_gr_walker {
  /* bpf_get_stackid(BPF_F_USER_STACK): the kernel's frame-pointer walk; the stack field
   * is a stack-trace map id. */
  LW_GR_WALK_KERNEL = 0,
  /* A bounded frame-pointer walk in BPF that stops at a null frame pointer without reading
   * it (the kernel's walk reads the final null frame and takes a fault); the stack field
   * is a 64-bit hash of the frames, the key of the `fp_stacks` map. */
  LW_GR_WALK_FP = 1,
};

/* Activity and loss counters (a per-CPU array indexed by these). */
enum lw_gr_counter {
  LW_GR_CNT_FAULTS = 0,        /* page faults of the target(s) */
  LW_GR_CNT_SAMPLED,           /* faults whose stack was captured (LW_GR_EV_FAULT events) */
  LW_GR_CNT_MMAP,              /* mmap calls seen (exit) */
  LW_GR_CNT_MUNMAP,
  LW_GR_CNT_MREMAP,
  LW_GR_CNT_BRK,
  LW_GR_CNT_RSS_EVENTS,        /* rss_stat updates of the target(s) */
  LW_GR_CNT_STACK_LOST,        /* LOSS: stack not captured or not stored */
  LW_GR_CNT_EVENTS_LOST,       /* LOSS: events ring buffer full */
  LW_GR_CNT_INFLIGHT_FULL,     /* LOSS: per-thread syscall state map full */
  LW_GR_CNT_RSS_FULL,          /* LOSS: rss map full */
  LW_GR_CNT_SNAPSHOTS,         /* events sent with a user-stack snapshot (DWARF unwinding) */
  LW_GR_CNT_SNAPSHOT_BYTES,    /* bytes of user stack copied into them */
  LW_GR_CNT_SNAPSHOTS_LOST,    /* LOSS: no room for the snapshot (ring over half full or
                                * full): the event was sent without a stack */
  LW_GR_CNT_SNAPSHOT_EMPTY,    /* LOSS: no byte of the user stack could be read */
  LW_GR_CNT_MAX,
};

/* A stack walked by LW_GR_WALK_FP (value of the fp_stacks map, key = hash). */
struct lw_gr_stack {
  __u32 depth;
  __u32 pad;
  __u64 ips[LW_GR_MAX_DEPTH];
};

enum lw_gr_event_type {
  LW_GR_EV_FAULT = 0,   /* a sampled page fault: addr, flags = error code, stack */
  LW_GR_EV_MMAP = 1,    /* addr, len, prot, flags, fd */
  LW_GR_EV_MUNMAP = 2,  /* addr, len */
  LW_GR_EV_MREMAP = 3,  /* old_addr, old_len -> addr, len */
  LW_GR_EV_BRK = 4,     /* old_addr (break before) -> addr (break after) */
  LW_GR_EV_EXEC = 5,    /* the process replaced its address space */
  LW_GR_EV_EXIT = 6,    /* the process (its last thread) exited */
};

struct lw_gr_event {
  __u64 ts;        /* bpf_ktime_get_ns() at the fault or the syscall's exit */
  __u64 addr;      /* result address (mmap, mremap), range start (munmap), new break */
  __u64 len;
  __u64 old_addr;  /* mremap: old range; brk: break before the call */
  __u64 old_len;
  __u64 stack;     /* stack of the call (mmap, mremap, brk) */
  __u32 tgid;
  __u32 tid;
  __u32 type;      /* enum lw_gr_event_type */
  __u32 prot;
  __u32 flags;
  __s32 fd;
};

/* Arguments of a syscall between its entry and exit (per thread). */
struct lw_gr_inflight {
  __u64 a0, a1, a2, a3;
  __s32 fd;
  __u32 nr;        /* enum lw_gr_event_type */
};

/* RSS of one process from kmem:rss_stat, in bytes, per mm counter (MM_FILEPAGES,
 * MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES).  The kernel reports the approximate (per-CPU
 * batched) counter value. */
#define LW_GR_RSS_MEMBERS 4
struct lw_gr_rss {
  __s64 first[LW_GR_RSS_MEMBERS];  /* first value seen (0 = not seen yet) */
  __s64 cur[LW_GR_RSS_MEMBERS];
  __s64 peak[LW_GR_RSS_MEMBERS];
  __u64 updates;
  __u32 seen_mask;                 /* bit m: member m was seen */
  __u32 pad;
};

#endif
