/* Copies the top of the user stack into a snapshot (bpf/unwind.h) for DWARF unwinding in user
 * space.  Shared by the allocation trace (memleak.bpf.c, at the allocator's return) and the
 * growth trace (growth.bpf.c, at a page fault or an mmap/brk syscall).
 *
 * BPF-only.  The snapshot must live in a map value with at least LW_SNAPSHOT_SLACK bytes
 * behind its stack[]: the page-by-page copy writes less than two pages past any offset below
 * LW_SNAPSHOT_MAX, which is what the verifier can check.
 */
#ifndef LEAKWATCH_BPF_STACK_SNAPSHOT_BPF_H
#define LEAKWATCH_BPF_STACK_SNAPSHOT_BPF_H

#include "bpf/unwind.h"

#define LW_SNAPSHOT_PAGE 4096u
#define LW_SNAPSHOT_SLACK (2 * LW_SNAPSHOT_PAGE)

/* Copies up to `want` bytes from snap->sp upwards and sets snap->stack_size; returns the
 * bytes copied (0: every read failed, the ip alone is then one frame).  Page by page: near
 * the top of a stack the copy stops at the first page that cannot be read, which costs one
 * failed read (a page fault, microseconds here) instead of one per halving of a too-large
 * request.  On the main thread nothing above the process's initial stack pointer belongs to
 * a frame, and the stack mapping ends a few pages above it: the copy stops there. */
static __always_inline __u32 lw_snapshot_copy(struct lw_stack_snapshot *snap, __u32 want)
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
    if (chunk == 0 ||
        bpf_probe_read_user(&snap->stack[off], chunk, (void *)(snap->sp + copied)))
      break;
    copied += chunk;
  }
  snap->stack_size = copied;
  return copied;
}

#endif
