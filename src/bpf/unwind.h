/* Stack snapshots for DWARF unwinding in user space (issue 7).  Shared by the BPF side
 * (which fills them) and src/unwind (which unwinds them).  Plain C, fixed-width fields,
 * 8-byte aligned; user space static_asserts the layout (src/unwind/unwinder.cpp).
 *
 * What a snapshot holds, taken at the RETURN probe of an allocation function:
 *
 *     ip = pt_regs->ip   the return address, inside the caller of the allocator
 *     sp = pt_regs->sp   the caller's stack pointer (the return address was popped)
 *     bp = pt_regs->bp   the caller's rbp (callee-saved, so restored by the allocator)
 *
 *     user stack        higher addresses (older frames: main, __libc_start_main, ...)
 *        ^              |
 *        |  stack[stack_size - 1]  = byte at sp + stack_size - 1
 *        |  ...
 *        |  stack[0]               = byte at sp
 *
 * The unwinder reads saved registers and return addresses only from [sp, sp + stack_size);
 * a frame whose data lies beyond it ends the stack marked "truncated: snapshot too small".
 *
 * Notes for the BPF side:
 *  - bpf_probe_read_user() of a range that crosses the end of the stack mapping fails as a
 *    whole (and zeroes the buffer).  Near the top of a stack, retry with smaller sizes (e.g.
 *    halving) and set stack_size to what was read -- 0 if every try failed (ip alone is
 *    then one frame).  The outermost frames (main, __libc_start_main, _start) sit near the
 *    top, so a halved read can lose exactly them; for the main thread the distance
 *    task->mm->start_stack - sp (the exec-time sp, above every frame) is a size that stays
 *    inside the mapping.
 *  - The struct is LW_SNAPSHOT_HEADER_SIZE + LW_SNAPSHOT_MAX bytes: too big for the BPF
 *    stack, reserve it in a ring buffer or a per-CPU array.  To send only what was read,
 *    bpf_ringbuf_output(LW_SNAPSHOT_HEADER_SIZE + stack_size) from a per-CPU buffer works.
 *  - At an ENTRY probe (or any probe where ip is the interrupted instruction rather than
 *    a return address) set LW_SNAPSHOT_IP_EXACT in flags: the first CFI lookup then uses ip
 *    itself instead of ip - 1.
 */
#ifndef LEAKWATCH_BPF_UNWIND_H
#define LEAKWATCH_BPF_UNWIND_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Largest stack copy.  16 KiB reaches main from typical allocation sites; deep stacks (or
 * big frames) are reported truncated, never cut silently. */
#define LW_SNAPSHOT_MAX 16384

/* flags */
#define LW_SNAPSHOT_IP_EXACT 1u /* ip is the interrupted instruction, not a return address */

struct lw_stack_snapshot {
  __u64 ip;          /* user rip at the probe (see above) */
  __u64 sp;          /* user rsp; stack[0] is the byte at this address */
  __u64 bp;          /* user rbp */
  __u64 alloc_addr;  /* the allocation's address (matches lw_alloc_key.addr); 0 if none */
  __u32 tgid;        /* process; the unwinder checks it against its pid */
  __u32 tid;         /* thread (informational) */
  __u32 stack_size;  /* valid bytes in stack[], <= LW_SNAPSHOT_MAX */
  __u32 flags;       /* LW_SNAPSHOT_* */
  __u8 stack[LW_SNAPSHOT_MAX];
};

/* Bytes before stack[]: what a variable-length record carries besides the stack bytes. */
#define LW_SNAPSHOT_HEADER_SIZE 48

#ifdef __cplusplus
static_assert(sizeof(struct lw_stack_snapshot) == LW_SNAPSHOT_HEADER_SIZE + LW_SNAPSHOT_MAX,
              "lw_stack_snapshot layout");
#include <string.h>
/* A ring record holds the header and stack_size bytes, not the struct's tail: copies it into
 * a whole struct (stack_size clipped to the bytes present).  False when too short. */
static inline bool lw_snapshot_from_record(const void *data, size_t len,
                                           struct lw_stack_snapshot *out)
{
  if (len < LW_SNAPSHOT_HEADER_SIZE)
    return false;
  memcpy(out, data, len < sizeof(*out) ? len : sizeof(*out));
  if (out->stack_size > len - LW_SNAPSHOT_HEADER_SIZE)
    out->stack_size = (__u32)(len - LW_SNAPSHOT_HEADER_SIZE);
  return true;
}
#else
_Static_assert(sizeof(struct lw_stack_snapshot) == LW_SNAPSHOT_HEADER_SIZE + LW_SNAPSHOT_MAX,
               "lw_stack_snapshot layout");
#endif

#endif
