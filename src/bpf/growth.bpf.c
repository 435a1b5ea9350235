// SPDX-License-Identifier: GPL-2.0
/* leakwatch growth: where resident memory grows, from tracepoints only (no uprobes).
 *
 *  - exceptions:page_fault_user (tp_btf, the cheap raw form): every fault of the target is
 *    counted; 1 in `sample_period` faults gets its user stack captured and is sent to user
 *    space with its address and error code.  User space classifies it as anonymous or
 *    file-backed from the regions it tracks: bpf_find_vma would tell here, but at this
 *    tracepoint interrupts are off, so it drops mmap_lock through an irq_work (a self-IPI,
 *    ~2.9 us per lookup measured in this VM), more than the rest of the program.
 *  - syscalls mmap/munmap/mremap/brk: arguments are kept per thread from entry to exit; a
 *    successful call becomes an event (with the call's stack) in a ring buffer.  These
 *    calls are rare, and user space keeps the regions as intervals, which handles partial
 *    unmaps, moves and MAP_FIXED replacement exactly.
 *  - kmem:rss_stat (tp_btf): the current process's RSS counters, first / current / peak.
 *
 * Two user-stack walkers (rodata stack_walker), measured against each other in
 * BENCHMARKS.md: the kernel's (bpf_get_stackid) and leakwatch's (bpf/fp_stack.bpf.h),
 * which stops at a null frame pointer instead of reading address 0 and recovers the caller
 * of a frameless syscall wrapper or leaf function.  With unwind_dwarf neither walks: the
 * event carries a bounded copy of the top of the user stack (bpf/stack_snapshot.bpf.h),
 * unwound in user space with the objects' CFI, which goes through glibc's and libstdc++'s
 * frameless code (sysmalloc, _int_malloc, operator new) to the application's functions.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/fp_stack.bpf.h"
#include "bpf/growth.h"
/* A snapshot travels behind its event, in one ring record. */
#define LW_SNAPSHOT_LEAD sizeof(struct lw_gr_event)
#include "bpf/stack_snapshot.bpf.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;      /* 0: every process (cgroup filter, if any) */
const volatile __u32 filter_cgroup = 0;    /* 1: only tasks under cgroup_filter[0] */
const volatile __u32 stack_walker = LW_GR_WALK_FP;
const volatile __u32 sample_period = 1;    /* capture 1 in N fault stacks */
const volatile __u32 page_shift = 12;
const volatile __u32 syscall_stacks = 1;   /* capture stacks of mmap/mremap/brk */
const volatile __u32 unwind_dwarf = 0;     /* 1: stack snapshots instead of walks */
const volatile __u32 snapshot_size = 8192; /* bytes of user stack per snapshot, at most */
/* 1: the target is a child leakwatch started and is still running leakwatch's code before its
 * exec; nothing it does counts until the exec (its first faults after fork are leakwatch's). */
const volatile __u32 wait_for_exec = 0;
__u32 exec_seen = 0;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, LW_GR_CNT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_STACK_TRACE);
  __uint(max_entries, 16384);
  __uint(key_size, sizeof(__u32));
  __uint(value_size, LW_GR_MAX_DEPTH * sizeof(__u64));
} stack_traces SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct lw_gr_stack);
} fp_stacks SEC(".maps");

/* Written with BPF_RB_NO_WAKEUP: a wakeup is an irq_work (a self-IPI) per event; user space
 * polls the ring on a timer instead. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, struct lw_gr_inflight);
} inflight SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, struct lw_gr_rss);
} rss SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} cgroup_filter SEC(".maps");

/* Layout of the syscalls:sys_enter_* / sys_exit_* tracepoint records. */
struct lw_sys_enter {
  __u64 common;
  __s32 nr;
  __u32 pad;
  __u64 args[6];
};

struct lw_sys_exit {
  __u64 common;
  __s32 nr;
  __u32 pad;
  __s64 ret;
};

static __always_inline void count(__u32 idx)
{
  __u64 *v = bpf_map_lookup_elem(&counters, &idx);
  if (v)
    *v += 1;
}

static __always_inline bool traced(__u32 tgid)
{
  if (target_tgid && tgid != target_tgid)
    return false;
  if (wait_for_exec && !exec_seen)
    return false;
  if (filter_cgroup && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
    return false;
  return true;
}

/* ---- stacks ---- */

/* lw_fp_walk builds a stack here (larger than the BPF stack), then it is stored by hash. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct lw_gr_stack);
} scratch SEC(".maps");

_Static_assert(sizeof(struct lw_gr_stack) == sizeof(struct lw_fp_frames) &&
                   LW_GR_MAX_DEPTH == LW_FP_MAX_DEPTH,
               "lw_gr_stack is the walker's lw_fp_frames as user space reads it");

static __always_inline __u64 walk_fp(struct pt_regs *regs, bool at_syscall)
{
  __u32 zero = 0;
  struct lw_gr_stack *st = bpf_map_lookup_elem(&scratch, &zero);
  if (!st)
    return LW_GR_NO_STACK;
  __u64 h = lw_fp_walk(regs, at_syscall, (struct lw_fp_frames *)st);
  if (h == LW_GR_NO_STACK)
    h = 0;
  if (!bpf_map_lookup_elem(&fp_stacks, &h) &&
      bpf_map_update_elem(&fp_stacks, &h, st, BPF_NOEXIST) &&
      !bpf_map_lookup_elem(&fp_stacks, &h))
    return LW_GR_NO_STACK;
  return h;
}

static __always_inline __u64 capture_stack(void *ctx, struct pt_regs *regs, bool at_syscall)
{
  __u64 stack;
  if (stack_walker == LW_GR_WALK_KERNEL) {
    long id = bpf_get_stackid(ctx, &stack_traces, BPF_F_USER_STACK);
    stack = id < 0 ? LW_GR_NO_STACK : (__u64)id;
  } else {
    stack = regs ? walk_fp(regs, at_syscall) : LW_GR_NO_STACK;
  }
  if (stack == LW_GR_NO_STACK)
    count(LW_GR_CNT_STACK_LOST);
  return stack;
}

static __always_inline void output(struct lw_gr_event *e)
{
  if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_NO_WAKEUP))
    count(LW_GR_CNT_EVENTS_LOST);
}

/* Sends `e` with a snapshot of the user stack at `regs`, in one ring record (user space
 * sees both in the order the events happened).  Without room for the snapshot the
 * event still goes, without a stack: the regions user space keeps need every mmap and brk. */
static __always_inline void output_with_snapshot(struct lw_gr_event *e, struct pt_regs *regs,
                                                 __u32 flags, __u64 absent_page)
{
  /* Snapshots may fill half of the ring, no more: the rest stays for the events, which
   * the regions need (a storm of sampled faults unwound slower than it comes would
   * otherwise crowd out the mmap and brk events). */
  if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >
      bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2) {
    count(LW_GR_CNT_SNAPSHOTS_LOST);
    e->stack = LW_GR_NO_STACK;
    output(e);
    return;
  }
  __u32 zero = 0;
  struct lw_snapshot_slot *slot = bpf_map_lookup_elem(&snapshot_buf, &zero);
  if (!slot || !regs) {
    e->stack = LW_GR_NO_STACK;
    count(LW_GR_CNT_STACK_LOST);
    output(e);
    return;
  }
  struct lw_gr_event *ev = (struct lw_gr_event *)slot->lead;
  *ev = *e;
  ev->stack = LW_GR_SNAPSHOT_STACK;
  struct lw_stack_snapshot *snap = &slot->snap;
  snap->ip = BPF_CORE_READ(regs, ip);
  snap->sp = BPF_CORE_READ(regs, sp);
  snap->bp = BPF_CORE_READ(regs, bp);
  snap->alloc_addr = 0;
  snap->tgid = e->tgid;
  snap->tid = e->tid;
  snap->flags = flags;
  __u32 copied = lw_snapshot_copy(snap, snapshot_size, absent_page);
  if (copied > LW_SNAPSHOT_MAX)
    return;
  if (copied == 0)
    count(LW_GR_CNT_SNAPSHOT_EMPTY);
  if (bpf_ringbuf_output(&events, slot, LW_SNAPSHOT_LEAD + LW_SNAPSHOT_HEADER_SIZE + copied,
                         BPF_RB_NO_WAKEUP)) {
    count(LW_GR_CNT_SNAPSHOTS_LOST);
    e->stack = LW_GR_NO_STACK;
    output(e);
    return;
  }
  count(LW_GR_CNT_SNAPSHOTS);
  __u32 idx = LW_GR_CNT_SNAPSHOT_BYTES;
  __u64 *v = bpf_map_lookup_elem(&counters, &idx);
  if (v)
    *v += copied;
}

/* ---- page faults ---- */

SEC("tp_btf/page_fault_user")
int BPF_PROG(lw_gr_fault, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!traced(tgid))
    return 0;
  count(LW_GR_CNT_FAULTS);
  if (sample_period > 1 && bpf_get_prandom_u32() % sample_period != 0)
    return 0;
  count(LW_GR_CNT_SAMPLED);
  struct lw_gr_event e = {
      .ts = bpf_ktime_get_ns(), .addr = address, .tgid = tgid, .tid = (__u32)id,
      .type = LW_GR_EV_FAULT, .flags = (__u32)error_code, .fd = -1};
  if (unwind_dwarf) {
    /* The ip is the faulting instruction itself, not a return address.  A fault on a page
     * that is not present (error code bit 0 clear) may be the stack growing into it. */
    __u64 absent = (error_code & 1) ? 0 : address & ~(__u64)(LW_SNAPSHOT_PAGE - 1);
    output_with_snapshot(&e, regs, LW_SNAPSHOT_IP_EXACT, absent);
    return 0;
  }
  e.stack = capture_stack(ctx, regs, false);
  output(&e);
  return 0;
}

/* ---- mmap, munmap, mremap, brk ---- */

static __always_inline void enter(__u32 nr, __u64 a0, __u64 a1, __u64 a2, __u64 a3, __s32 fd)
{
  __u64 id = bpf_get_current_pid_tgid();
  if (!traced(id >> 32))
    return;
  __u32 tid = (__u32)id;
  struct lw_gr_inflight st = {.a0 = a0, .a1 = a1, .a2 = a2, .a3 = a3, .fd = fd, .nr = nr};
  if (bpf_map_update_elem(&inflight, &tid, &st, BPF_ANY))
    count(LW_GR_CNT_INFLIGHT_FULL);
}

/* Takes the thread's state of syscall `nr`; false when there is none. */
static __always_inline bool take(__u32 nr, struct lw_gr_inflight *out)
{
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct lw_gr_inflight *st = bpf_map_lookup_elem(&inflight, &tid);
  if (!st)
    return false;
  bool ok = st->nr == nr;
  if (ok)
    *out = *st;
  bpf_map_delete_elem(&inflight, &tid);
  return ok;
}

static __always_inline void emit(void *ctx, struct lw_gr_event *e, bool with_stack)
{
  __u64 id = bpf_get_current_pid_tgid();
  e->ts = bpf_ktime_get_ns();
  e->tgid = id >> 32;
  e->tid = (__u32)id;
  e->stack = LW_GR_NO_STACK;
  if (with_stack && syscall_stacks) {
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    if (unwind_dwarf) {
      /* The ip follows the syscall instruction: unwound as a return address. */
      output_with_snapshot(e, regs, 0, 0);
      return;
    }
    e->stack = capture_stack(ctx, regs, true);
  }
  output(e);
}

static __always_inline bool failed(__s64 ret)
{
  return ret < 0 && ret > -4096;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int lw_gr_enter_mmap(struct lw_sys_enter *ctx)
{
  /* addr, len, prot, flags, fd, off */
  enter(LW_GR_EV_MMAP, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3],
        (__s32)ctx->args[4]);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int lw_gr_exit_mmap(struct lw_sys_exit *ctx)
{
  struct lw_gr_inflight st;
  if (!take(LW_GR_EV_MMAP, &st))
    return 0;
  count(LW_GR_CNT_MMAP);
  if (failed(ctx->ret))
    return 0;
  struct lw_gr_event e = {
      .type = LW_GR_EV_MMAP, .addr = (__u64)ctx->ret, .len = st.a1,
      .prot = (__u32)st.a2, .flags = (__u32)st.a3, .fd = st.fd};
  emit(ctx, &e, true);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_munmap")
int lw_gr_enter_munmap(struct lw_sys_enter *ctx)
{
  enter(LW_GR_EV_MUNMAP, ctx->args[0], ctx->args[1], 0, 0, -1);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_munmap")
int lw_gr_exit_munmap(struct lw_sys_exit *ctx)
{
  struct lw_gr_inflight st;
  if (!take(LW_GR_EV_MUNMAP, &st))
    return 0;
  count(LW_GR_CNT_MUNMAP);
  if (ctx->ret != 0)
    return 0;
  struct lw_gr_event e = {.type = LW_GR_EV_MUNMAP, .addr = st.a0, .len = st.a1, .fd = -1};
  emit(ctx, &e, false);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_mremap")
int lw_gr_enter_mremap(struct lw_sys_enter *ctx)
{
  /* addr, old_len, new_len, flags, new_addr */
  enter(LW_GR_EV_MREMAP, ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], -1);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_mremap")
int lw_gr_exit_mremap(struct lw_sys_exit *ctx)
{
  struct lw_gr_inflight st;
  if (!take(LW_GR_EV_MREMAP, &st))
    return 0;
  count(LW_GR_CNT_MREMAP);
  if (failed(ctx->ret))
    return 0;
  struct lw_gr_event e = {
      .type = LW_GR_EV_MREMAP, .old_addr = st.a0, .old_len = st.a1,
      .addr = (__u64)ctx->ret, .len = st.a2, .flags = (__u32)st.a3, .fd = -1};
  emit(ctx, &e, true);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_brk")
int lw_gr_enter_brk(struct lw_sys_enter *ctx)
{
  /* The break before the call, from the mm: brk(0) and failed calls leave it unchanged. */
  struct task_struct *task = bpf_get_current_task_btf();
  __u64 old_brk = BPF_CORE_READ(task, mm, brk);
  enter(LW_GR_EV_BRK, old_brk, ctx->args[0], 0, 0, -1);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_brk")
int lw_gr_exit_brk(struct lw_sys_exit *ctx)
{
  struct lw_gr_inflight st;
  if (!take(LW_GR_EV_BRK, &st))
    return 0;
  count(LW_GR_CNT_BRK);
  __u64 new_brk = (__u64)ctx->ret;
  if (new_brk == st.a0 || failed(ctx->ret))
    return 0;
  struct lw_gr_event e = {.type = LW_GR_EV_BRK, .old_addr = st.a0, .addr = new_brk, .fd = -1};
  /* A shrink only removes bytes: who made it does not matter (malloc trims often). */
  emit(ctx, &e, new_brk > st.a0);
  return 0;
}

/* ---- process lifetime: the regions of a process end with its address space ---- */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(lw_gr_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
  if (wait_for_exec && target_tgid == bpf_get_current_pid_tgid() >> 32)
    exec_seen = 1;
  if (!traced(bpf_get_current_pid_tgid() >> 32))
    return 0;
  struct lw_gr_event e = {.type = LW_GR_EV_EXEC, .fd = -1};
  emit(ctx, &e, false);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(lw_gr_exit, struct task_struct *p, bool group_dead)
{
  /* The process is gone when its last thread exits. */
  if (!group_dead || !traced(bpf_get_current_pid_tgid() >> 32))
    return 0;
  struct lw_gr_event e = {.type = LW_GR_EV_EXIT, .fd = -1};
  emit(ctx, &e, false);
  return 0;
}

/* ---- RSS ---- */

/* The counters change only when a CPU's batch is folded into them (the kernel reports the
 * approximate value), while the tracepoint fires on every page: most events repeat the
 * last value.  A per-CPU copy of the last value seen lets them return before the map. */
struct rss_last {
  __u32 tgid;
  __u32 pad;
  __s64 pages[LW_GR_RSS_MEMBERS];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct rss_last);
} rss_seen SEC(".maps");

static __always_inline __s64 rss_pages(struct mm_struct *mm, int member)
{
  /* Constant indices: the verifier does not allow a variable offset into a BTF object. */
  switch (member) {
  case 0: return mm->rss_stat[0].count;
  case 1: return mm->rss_stat[1].count;
  case 2: return mm->rss_stat[2].count;
  case 3: return mm->rss_stat[3].count;
  default: return 0;
  }
}

SEC("tp_btf/rss_stat")
int BPF_PROG(lw_gr_rss, struct mm_struct *mm, int member)
{
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!traced(tgid) || member < 0 || member >= LW_GR_RSS_MEMBERS)
    return 0;
  /* Only the current process's own counters: its tgid names them. */
  if (bpf_get_current_task_btf()->mm != mm)
    return 0;
  count(LW_GR_CNT_RSS_EVENTS);
  __s64 pages = rss_pages(mm, member);
  __u32 m = (__u32)member & (LW_GR_RSS_MEMBERS - 1);
  __u32 zero = 0;
  struct rss_last *last = bpf_map_lookup_elem(&rss_seen, &zero);
  if (!last)
    return 0;
  if (last->tgid != tgid) {
    last->tgid = tgid;
    last->pages[0] = last->pages[1] = last->pages[2] = last->pages[3] = -1;
  } else if (last->pages[m] == pages) {
    return 0;
  }
  last->pages[m] = pages;
  __s64 bytes = (pages < 0 ? 0 : pages) << page_shift;

  struct lw_gr_rss *r = bpf_map_lookup_elem(&rss, &tgid);
  if (!r) {
    struct lw_gr_rss init = {};
    bpf_map_update_elem(&rss, &tgid, &init, BPF_NOEXIST);
    r = bpf_map_lookup_elem(&rss, &tgid);
    if (!r) {
      count(LW_GR_CNT_RSS_FULL);
      return 0;
    }
  }
  if (!(r->seen_mask & (1u << m))) {
    r->first[m] = bytes;
    r->seen_mask |= 1u << m;
  }
  r->cur[m] = bytes;
  if (bytes > r->peak[m])
    r->peak[m] = bytes;
  r->updates++;
  return 0;
}
