/* Copies the top of the user stack into a snapshot (bpf/unwind.h) for DWARF unwinding in user
 * space.  Shared by the allocation trace (memleak.bpf.c, at the allocator's return) and the
 * growth trace (growth.bpf.c, at a page fault or an mmap/brk syscall).
 *
 * BPF-only.  The snapshot lives in `snapshot_buf`, a per-CPU slot with LW_SNAPSHOT_SLACK
 * bytes behind its stack[]: the page-by-page copy writes less than two pages past any offset
 * below LW_SNAPSHOT_MAX, which is what the verifier can check.  An includer that sends a
 * record of its own in front of the snapshot (growth: its event) defines LW_SNAPSHOT_LEAD,
 * that record's size (a multiple of 8), before including this header; the lead bytes, the
 * header and stack_size bytes of the stack are then contiguous, one ring buffer record.
 */
#ifndef LEAKWATCH_BPF_STACK_SNAPSHOT_BPF_H
#define LEAKWATCH_BPF_STACK_SNAPSHOT_BPF_H

#include "bpf/unwind.h"

#define LW_SNAPSHOT_PAGE 4096u
#define LW_SNAPSHOT_SLACK (2 * LW_SNAPSHOT_PAGE)
#ifndef LW_SNAPSHOT_LEAD
#define LW_SNAPSHOT_LEAD 0
#endif
_Static_assert(LW_SNAPSHOT_LEAD % 8 == 0, "the snapshot follows its lead without padding");

struct lw_snapshot_slot {
  __u8 lead[LW_SNAPSHOT_LEAD];
  struct lw_stack_snapshot snap;
  __u8 slack[LW_SNAPSHOT_SLACK];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct lw_snapshot_slot);
} snapshot_buf SEC(".maps");

/* Copies up to `want` bytes from snap->sp upwards and sets snap->stack_size; returns the
 * bytes copied (0: every read failed, the ip alone is then one frame).  `absent_page`
 * (page-aligned, 0 for none) is a page known not to be present because the program is
 * faulting on it: the first touch of a stack page as a function's frame grows into it.  It
 * cannot be read here (page faults are off), but a fresh anonymous page holds zeros, which
 * is what a failed read leaves in the buffer: it counts as copied.  Page by page: near
 * the top of a stack the copy stops at the first page that cannot be read, which costs one
 * failed read (a page fault, microseconds here) instead of one per halving of a too-large
 * request.  On the main thread nothing above the process's initial stack pointer belongs to
 * a frame, and the stack mapping ends a few pages above it: the copy stops there. */
static __always_inline __u32 lw_snapshot_copy(struct lw_stack_snapshot *snap, __u32 want,
                                               __u64 absent_page)
{
  if (want > LW_SNAPSHOT_MAX)
    want = LW_SNAPSHOT_MAX;
  struct task_struct *task = bpf_get_current_task_btf();
  __u64 start_stack = BPF_CORE_READ(task, mm, start_stack);
  if (start_stack > snap->sp && start_stack - snap->sp < want)
    want = start_stack - snap->sp;
  __u32 copied = 0;
  for (int i = 0; i < LW_SNAPSHOT_MAX / LW_SNAPSHOT_PAGE + 1; i++) {
    if (copied >= want)
      break;
    __u64 chunk = LW_SNAPSHOT_PAGE - ((snap->sp + copied) & (LW_SNAPSHOT_PAGE - 1));
    if (chunk > (__u64)(want - copied))
      chunk = want - copied;
    chunk &= 2 * LW_SNAPSHOT_PAGE - 1; /* for the verifier: it is at most a page already */
    __u64 off = copied & (LW_SNAPSHOT_MAX - 1);
    if (chunk == 0)
      break;
    __u64 from = snap->sp + copied;
    /* On failure the helper zeroes what it was to write. */
    if (bpf_probe_read_user(&snap->stack[off], chunk, (void *)from) &&
        (!absent_page || (from & ~(__u64)(LW_SNAPSHOT_PAGE - 1)) != absent_page))
      break;
    copied += chunk;
  }
  snap->stack_size = copied;
  return copied;
}

#endif
