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
 * BENCHMARKS.md: the kernel's (bpf_get_stackid) and a bounded frame-pointer walk here,
 * which stops at a null frame pointer instead of reading address 0.  The own walk also
 * recovers the caller of a frameless leaf (a syscall wrapper, memset): its return address
 * is at [sp], accepted only when the bytes before it are a call instruction.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/growth.h"

char LICENSE[] SEC("license") = "GPL";

/* Frame pointers farther than this above the stack pointer are not believed. */
#define LW_GR_MAX_FRAME_SPAN (8ULL << 20)
/* Slots above [sp] scanned for return addresses at a syscall (see scan_return_addresses). */
#define LW_GR_SCAN_SLOTS 16
#define LW_GR_USER_TOP 0x00007ffffffff000ULL
/* A pc this far past the start of the function called is not believed to be in it. */
#define LW_GR_MAX_FUNCTION 8192

const volatile __u32 target_tgid = 0;      /* 0: every process (cgroup filter, if any) */
const volatile __u32 filter_cgroup = 0;    /* 1: only tasks under cgroup_filter[0] */
const volatile __u32 stack_walker = LW_GR_WALK_FP;
const volatile __u32 sample_period = 1;    /* capture 1 in N fault stacks */
const volatile __u32 page_shift = 12;
const volatile __u32 syscall_stacks = 1;   /* capture stacks of mmap/mremap/brk */

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

/* The walk builds its stack here: a struct lw_gr_stack is larger than the BPF stack. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct lw_gr_stack);
} scratch SEC(".maps");

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
  if (filter_cgroup && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
    return false;
  return true;
}

/* ---- stacks ---- */

static __always_inline __u64 mix(__u64 h, __u64 ip)
{
  h ^= ip;
  h *= 0x9e3779b97f4a7c15ULL;
  return h ^ (h >> 29);
}

/* Whether `ret` follows a call instruction: call rel32 (e8), call *disp32(%rip) (ff 15),
 * call *disp8(%reg) (ff 50+r), call *%reg (ff d0+r, optionally REX-prefixed). */
static __always_inline bool after_call(__u64 ret)
{
  __u8 b[8];
  if (ret < 4096 + 8 || ret >= LW_GR_USER_TOP)
    return false;
  if (bpf_probe_read_user(b, sizeof(b), (void *)(ret - 8)))
    return false;
  if (b[3] == 0xe8)
    return true;
  if (b[2] == 0xff && b[3] == 0x15)
    return true;
  if (b[5] == 0xff && (b[6] & 0xf8) == 0x50)
    return true;
  return b[6] == 0xff && (b[7] & 0xf8) == 0xd0;
}

static __always_inline __s64 rel32(const __u8 *b)
{
  return (__s32)((__u32)b[0] | (__u32)b[1] << 8 | (__u32)b[2] << 16 | (__u32)b[3] << 24);
}

/* The function a call ending at `ret` called: the target of a call rel32 (through a PLT
 * stub, resolved from its GOT slot: `[endbr64] [bnd] jmp *disp32(%rip)`) or of a
 * call *disp32(%rip).  0 when unknown (a call through a register). */
static __always_inline __u64 call_target(__u64 ret)
{
  __u8 b[8];
  __u64 got = 0, target = 0;
  if (ret < 4096 + 8 || ret >= LW_GR_USER_TOP)
    return 0;
  if (bpf_probe_read_user(b, sizeof(b), (void *)(ret - 8)))
    return 0;
  if (b[2] == 0xff && b[3] == 0x15) {
    got = ret + rel32(&b[4]);
  } else if (b[3] == 0xe8) {
    __u64 t = ret + rel32(&b[4]);
    __u8 p[12];
    if (bpf_probe_read_user(p, sizeof(p), (void *)t))
      return 0;
    bool ibt = p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa;
    if (ibt && p[4] == 0xf2 && p[5] == 0xff && p[6] == 0x25)
      got = t + 11 + rel32(&p[7]);
    else if (ibt && p[4] == 0xff && p[5] == 0x25)
      got = t + 10 + rel32(&p[6]);
    else if (p[0] == 0xf2 && p[1] == 0xff && p[2] == 0x25)
      got = t + 7 + rel32(&p[3]);
    else if (p[0] == 0xff && p[1] == 0x25)
      got = t + 6 + rel32(&p[2]);
    else
      return t; /* a direct call */
  } else {
    return 0;
  }
  if (bpf_probe_read_user(&target, sizeof(target), (void *)got))
    return 0;
  return target;
}

/* Whether `ret` is the return address of a call into the function holding `pc` (the frame
 * found before it).  Stale return addresses left in stack slots by earlier calls fail this
 * unless they called the same function. */
static __always_inline bool returns_from(__u64 ret, __u64 pc)
{
  __u64 f = call_target(ret);
  return f && f <= pc && pc - f < LW_GR_MAX_FUNCTION;
}

/* A value that may be a return address: not in the stack, inside user space. */
static __always_inline bool maybe_code(__u64 v, __u64 sp)
{
  if (v < 0x10000 || v >= LW_GR_USER_TOP)
    return false;
  return !(v >= sp && v < sp + LW_GR_MAX_FRAME_SPAN);
}

/* State of one walk, shared with the bpf_loop callbacks (each callback is verified once,
 * which keeps the verifier's work small for the 16-slot scan and the 64-frame walk). */
struct walk_ctx {
  struct lw_gr_stack *st;
  __u64 h;        /* hash of the frames so far */
  __u64 sp;
  __u64 bp;       /* frame pointer to follow (0: none) */
  __u64 prev;     /* frames must lie above this */
  __u64 pc;       /* the last frame found: the next one must have called its function */
  __u32 n;        /* frames stored */
  __u32 bp_ok;
  __u32 last_ret; /* the scan stops at the next return address */
  __u32 pad;
  __u64 slots[LW_GR_SCAN_SLOTS];
};

static __always_inline bool push_ip(struct walk_ctx *w, __u64 ip)
{
  __u32 i = w->n;
  if (i >= LW_GR_MAX_DEPTH)
    return false;
  __u32 idx = i;
  asm volatile("" : "+r"(idx)); /* keep the mask below: the verifier needs it */
  w->st->ips[idx & (LW_GR_MAX_DEPTH - 1)] = ip;
  w->n = i + 1;
  w->h = mix(w->h, ip);
  return true;
}

/* One slot of the scan above [sp] at a syscall (see walk_fp). */
static long scan_slot(__u32 i, struct walk_ctx *w)
{
  if (i >= LW_GR_SCAN_SLOTS)
    return 1;
  __u64 slot_addr = w->sp + i * 8;
  if (w->bp_ok && slot_addr >= w->bp)
    return 1;
  __u32 idx = i;
  asm volatile("" : "+r"(idx)); /* keep the mask below: the verifier needs it */
  __u64 v = w->slots[idx & (LW_GR_SCAN_SLOTS - 1)];
  if (!w->bp_ok && v > slot_addr && v - slot_addr < LW_GR_MAX_FRAME_SPAN && !(v & 7)) {
    /* Maybe a saved rbp: believed when the frame it points to holds a return address. */
    __u64 frame[2];
    if (bpf_probe_read_user(frame, sizeof(frame), (void *)v) == 0 && after_call(frame[1])) {
      w->bp = v;
      w->bp_ok = 1;
      w->last_ret = 1;
    }
    return 0;
  }
  if (maybe_code(v, w->sp) && returns_from(v, w->pc)) {
    push_ip(w, v);
    w->pc = v;
    /* Above the return into the function that owns the frame pointer lie its locals,
     * where stale return addresses of earlier calls may linger: stop here. */
    if (w->last_ret)
      return 1;
  }
  return 0;
}

/* One frame of the frame-pointer chain. */
static long walk_frame(__u32 i, struct walk_ctx *w)
{
  __u64 bp = w->bp;
  /* The outermost frame has a null frame pointer: stop without reading it. */
  if (bp == 0 || (bp & 7) || bp < w->prev || bp - w->prev > LW_GR_MAX_FRAME_SPAN)
    return 1;
  __u64 frame[2];
  if (bpf_probe_read_user(frame, sizeof(frame), (void *)bp))
    return 1;
  if (frame[1] == 0 || !push_ip(w, frame[1]))
    return 1;
  w->prev = bp + 16;
  w->bp = frame[0];
  return 0;
}

/* Own frame-pointer walk from the user registers.  Stores the stack in fp_stacks and
 * returns its hash.
 *
 * At a syscall the wrapper that issued it usually has no frame of its own, and wrappers
 * that do (sbrk) use rbp as a plain register: the return addresses are then found by
 * scanning a few slots above [sp] (a value counts when the bytes before it are a call
 * into the function of the frame found before it), and a slot that points to a frame holding a return address is taken as a saved frame
 * pointer to continue the walk from:
 *
 *   mmap (leaf, rbp = caller's frame)     sbrk -> __brk (rbp used as a register)
 *   [sp]    ret -> caller   <- stop       [sp]     ret -> sbrk
 *   ...     caller's locals               [sp+8]   saved rbx
 *   [rbp]   caller's frame  <- walk       [sp+16]  saved rbp -> caller's frame <- walk
 *                                         [sp+24]  saved r12
 *                                         [sp+32]  ret -> caller  <- stop
 *
 * At a fault only [sp] is tried: the caller of a frameless leaf (memset, memcpy). */
static __always_inline __u64 walk_fp(struct pt_regs *regs, bool at_syscall)
{
  __u32 zero = 0;
  struct walk_ctx w = {};
  w.st = bpf_map_lookup_elem(&scratch, &zero);
  if (!w.st)
    return LW_GR_NO_STACK;
  w.h = 0xcbf29ce484222325ULL;
  w.sp = BPF_CORE_READ(regs, sp);
  w.bp = BPF_CORE_READ(regs, bp);
  w.prev = w.sp;
  w.pc = BPF_CORE_READ(regs, ip);
  push_ip(&w, w.pc);

  if (at_syscall) {
    /* A valid rbp belongs to the wrapper's caller: its return address is the one wanted.
     * Otherwise (the wrapper uses rbp as a register) the caller's saved rbp is looked for
     * first, and the return address after it is the last one. */
    w.bp_ok = w.bp > w.sp && w.bp - w.sp < LW_GR_MAX_FRAME_SPAN && !(w.bp & 7);
    w.last_ret = w.bp_ok;
    if (bpf_probe_read_user(w.slots, sizeof(w.slots), (void *)w.sp) == 0)
      bpf_loop(LW_GR_SCAN_SLOTS, scan_slot, &w, 0);
    if (!w.bp_ok)
      w.bp = 0;
  } else {
    __u64 top = 0;
    if (bpf_probe_read_user(&top, sizeof(top), (void *)w.sp) == 0 && maybe_code(top, w.sp) &&
        returns_from(top, w.pc))
      push_ip(&w, top);
  }
  bpf_loop(LW_GR_MAX_DEPTH, walk_frame, &w, 0);

  __u64 h = w.h == LW_GR_NO_STACK ? 0 : w.h;
  w.st->depth = w.n;
  if (!bpf_map_lookup_elem(&fp_stacks, &h) &&
      bpf_map_update_elem(&fp_stacks, &h, w.st, BPF_NOEXIST) &&
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
      .type = LW_GR_EV_FAULT, .flags = (__u32)error_code, .fd = -1,
      .stack = capture_stack(ctx, regs, false)};
  if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_NO_WAKEUP))
    count(LW_GR_CNT_EVENTS_LOST);
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
  if (with_stack && syscall_stacks)
    e->stack = capture_stack(
        ctx, (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()), true);
  if (bpf_ringbuf_output(&events, e, sizeof(*e), BPF_RB_NO_WAKEUP))
    count(LW_GR_CNT_EVENTS_LOST);
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
  emit(ctx, &e, true);
  return 0;
}

/* ---- process lifetime: the regions of a process end with its address space ---- */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(lw_gr_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
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

static __always_inline __s64 rss_pages(struct mm_struct *mm, int member)
{
  /* Constant indices: the verifier does not allow a variable offset into a BTF object. */
  switch (member) {
  case 0: return BPF_CORE_READ(mm, rss_stat[0].count);
  case 1: return BPF_CORE_READ(mm, rss_stat[1].count);
  case 2: return BPF_CORE_READ(mm, rss_stat[2].count);
  case 3: return BPF_CORE_READ(mm, rss_stat[3].count);
  default: return 0;
  }
}

SEC("tp_btf/rss_stat")
int BPF_PROG(lw_gr_rss, struct mm_struct *mm, int member)
{
  struct task_struct *task = bpf_get_current_task_btf();
  /* Only the current process's own counters: its tgid names them. */
  if (BPF_CORE_READ(task, mm) != mm)
    return 0;
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!traced(tgid) || member < 0 || member >= LW_GR_RSS_MEMBERS)
    return 0;
  count(LW_GR_CNT_RSS_EVENTS);
  __s64 pages = rss_pages(mm, member);
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
  __u32 m = (__u32)member & (LW_GR_RSS_MEMBERS - 1);
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
