/* A user-stack walker for BPF programs: frame pointers, followed by leakwatch itself.
 *
 * Why not bpf_get_stackid(BPF_F_USER_STACK): the kernel's walk reads the final null frame
 * pointer and takes a kernel page fault at address 0 on every capture; measured here, a
 * capture from exceptions:page_fault_user cost ~5.5 us with the kernel's walk and ~0.7 us
 * with this one (bench/growth_walkers.sh, BENCHMARKS.md).  This walk stops at a null (or
 * implausible) frame pointer without reading it, and recovers the caller of a frameless
 * function at the top of the stack (see lw_fp_walk).
 *
 * BPF-only (not shared with user space).  The includer provides the frame buffer (a
 * per-CPU map value: struct lw_fp_frames is larger than the BPF stack) and stores the
 * result; the walk returns a 64-bit hash of the frames to key them by.
 */
#ifndef LEAKWATCH_BPF_FP_STACK_BPF_H
#define LEAKWATCH_BPF_FP_STACK_BPF_H

#define LW_FP_MAX_DEPTH 64     /* frames; a power of two (the index is masked) */
/* Frame pointers farther than this above the stack pointer are not believed. */
#define LW_FP_MAX_FRAME_SPAN (8ULL << 20)
/* Slots above [sp] scanned for return addresses at a syscall. */
#define LW_FP_SCAN_SLOTS 16
#define LW_FP_USER_TOP 0x00007ffffffff000ULL
/* A pc this far past the start of the function called is not believed to be in it. */
#define LW_FP_MAX_FUNCTION 8192

struct lw_fp_frames {
  __u32 depth;
  __u32 pad;
  __u64 ips[LW_FP_MAX_DEPTH];
};

static __always_inline __u64 lw_fp_mix(__u64 h, __u64 ip)
{
  h ^= ip;
  h *= 0x9e3779b97f4a7c15ULL;
  return h ^ (h >> 29);
}

/* Whether `ret` follows a call instruction: call rel32 (e8), call *disp32(%rip) (ff 15),
 * call *disp8(%reg) (ff 50+r), call *%reg (ff d0+r, optionally REX-prefixed).  The weak
 * test, for a saved frame's return address (the strong one is lw_fp_returns_from). */
static __always_inline bool lw_fp_after_call(__u64 ret)
{
  __u8 b[8];
  if (ret < 4096 + 8 || ret >= LW_FP_USER_TOP)
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

static __always_inline __s64 lw_fp_rel32(const __u8 *b)
{
  return (__s32)((__u32)b[0] | (__u32)b[1] << 8 | (__u32)b[2] << 16 | (__u32)b[3] << 24);
}

/* The function a call ending at `ret` called: the target of a call rel32 (through a PLT
 * stub, resolved from its GOT slot: `[endbr64] [bnd] jmp *disp32(%rip)`) or of a
 * call *disp32(%rip).  0 when unknown (a call through a register). */
static __always_inline __u64 lw_fp_call_target(__u64 ret)
{
  __u8 b[8];
  __u64 got = 0, target = 0;
  if (ret < 4096 + 8 || ret >= LW_FP_USER_TOP)
    return 0;
  if (bpf_probe_read_user(b, sizeof(b), (void *)(ret - 8)))
    return 0;
  if (b[2] == 0xff && b[3] == 0x15) {
    got = ret + lw_fp_rel32(&b[4]);
  } else if (b[3] == 0xe8) {
    __u64 t = ret + lw_fp_rel32(&b[4]);
    __u8 p[12];
    if (bpf_probe_read_user(p, sizeof(p), (void *)t))
      return 0;
    bool ibt = p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa;
    if (ibt && p[4] == 0xf2 && p[5] == 0xff && p[6] == 0x25)
      got = t + 11 + lw_fp_rel32(&p[7]);
    else if (ibt && p[4] == 0xff && p[5] == 0x25)
      got = t + 10 + lw_fp_rel32(&p[6]);
    else if (p[0] == 0xf2 && p[1] == 0xff && p[2] == 0x25)
      got = t + 7 + lw_fp_rel32(&p[3]);
    else if (p[0] == 0xff && p[1] == 0x25)
      got = t + 6 + lw_fp_rel32(&p[2]);
    else
      return t; /* a direct call */
  } else {
    return 0;
  }
  if (bpf_probe_read_user(&target, sizeof(target), (void *)got))
    return 0;
  return target;
}

/* Call targets already resolved, by process and return address: resolving reads user
 * memory two or three times, and the same call sites come back on every capture. */
struct lw_fp_target_key {
  __u64 ret;
  __u32 tgid;
  __u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct lw_fp_target_key);
  __type(value, __u64);
} lw_fp_call_targets SEC(".maps");

static __always_inline bool lw_fp_in_function(__u64 f, __u64 pc)
{
  return f && f <= pc && pc - f < LW_FP_MAX_FUNCTION;
}

/* Whether `pc` lies near the start of the function called, on either side: the function
 * called may have tail-jumped to a neighbour (operator new[] -> operator new). */
static __always_inline bool lw_fp_near_function(__u64 f, __u64 pc)
{
  return f && (pc - f < LW_FP_MAX_FUNCTION || f - pc < LW_FP_MAX_FUNCTION);
}

#define LW_FP_VM_EXEC 0x4ULL

struct lw_fp_exec_ctx {
  bool exec;
};

static long lw_fp_check_exec_vma(struct task_struct *task, struct vm_area_struct *vma,
                                 struct lw_fp_exec_ctx *c)
{
  c->exec = (BPF_CORE_READ(vma, vm_flags) & LW_FP_VM_EXEC) != 0;
  return 0;
}

/* The call target of `ret` (0 when unknown), cached by process and address.
 * `exec_only`: `ret` is first checked against the process's mappings, and nothing behind it
 * is read unless it lies in executable memory: reading a page that is not present costs a
 * kernel exception (~5 us here), and stack slots searched for return addresses hold many
 * values that only look like one (pointers to freed mappings, data).  Such values are not
 * cached either: they seldom come back, and inserting them churns the LRU. */
static __always_inline __u64 lw_fp_cached_target(__u64 ret, bool exec_only)
{
  struct lw_fp_target_key key = {.ret = ret, .tgid = bpf_get_current_pid_tgid() >> 32};
  __u64 *cached = bpf_map_lookup_elem(&lw_fp_call_targets, &key);
  if (cached)
    return *cached;
  if (exec_only) {
    struct lw_fp_exec_ctx c = {};
    if (bpf_find_vma(bpf_get_current_task_btf(), ret - 8, lw_fp_check_exec_vma, &c, 0) ||
        !c.exec)
      return 0;
  }
  /* Lazy binding does not make this stale: a return address on the stack is that of a
   * call that ran, and the GOT slot was bound before the call reached its target. */
  __u64 f = lw_fp_call_target(ret);
  bpf_map_update_elem(&lw_fp_call_targets, &key, &f, BPF_ANY);
  return f;
}

/* Whether `ret` is the return address of a call into the function holding `pc` (the frame
 * found before it).  Stale return addresses left in stack slots by earlier calls fail this
 * unless they called the same function. */
static __always_inline bool lw_fp_returns_from(__u64 ret, __u64 pc)
{
  return lw_fp_in_function(lw_fp_cached_target(ret, false), pc);
}

/* Where code cannot be, from the process's mm: below the executable's text, between its
 * text and the end of the heap (data, bss, heap), and in the stack.  Reading a value that
 * is not mapped costs a kernel page fault (several microseconds here), so candidates are
 * filtered before any byte is read: sizes, heap pointers and stack addresses are the
 * common non-code values in stack slots. */
struct lw_fp_layout {
  __u64 start_code, end_code, brk;
};

static __always_inline void lw_fp_read_layout(struct lw_fp_layout *l)
{
  struct task_struct *task = bpf_get_current_task_btf();
  struct mm_struct *mm = task->mm;
  l->start_code = mm ? mm->start_code : 0;
  l->end_code = mm ? mm->end_code : 0;
  l->brk = mm ? mm->brk : 0;
}

/* A value that may be a return address (see struct lw_fp_layout). */
static __always_inline bool lw_fp_maybe_code(__u64 v, __u64 sp, const struct lw_fp_layout *l)
{
  if (v < 0x10000 || v >= LW_FP_USER_TOP || v < l->start_code)
    return false;
  if (v >= l->end_code && v < l->brk)
    return false;
  return !(v >= sp && v < sp + LW_FP_MAX_FRAME_SPAN);
}

/* State of one walk, shared with the bpf_loop callbacks (each callback is verified once,
 * which keeps the verifier's work small for the 16-slot scan and the 64-frame walk). */
struct lw_fp_walk_ctx {
  struct lw_fp_frames *st;
  __u64 h;        /* hash of the frames so far */
  __u64 sp;
  __u64 bp;       /* frame pointer to follow (0: none) */
  __u64 prev;     /* frames must lie above this */
  __u64 pc;       /* the last frame found: the next one must have called its function */
  __u32 n;        /* frames stored */
  __u32 bp_ok;
  __u32 last_ret; /* the scan stops at the next return address */
  __u32 pad;
  struct lw_fp_layout layout;
  __u64 slots[LW_FP_SCAN_SLOTS];
};

static __always_inline bool lw_fp_push(struct lw_fp_walk_ctx *w, __u64 ip)
{
  __u32 i = w->n;
  if (i >= LW_FP_MAX_DEPTH)
    return false;
  __u32 idx = i;
  asm volatile("" : "+r"(idx)); /* keep the mask below: the verifier needs it */
  w->st->ips[idx & (LW_FP_MAX_DEPTH - 1)] = ip;
  w->n = i + 1;
  w->h = lw_fp_mix(w->h, ip);
  return true;
}

/* One slot of the scan above [sp] at a syscall (see lw_fp_walk). */
static long lw_fp_scan_slot(__u32 i, struct lw_fp_walk_ctx *w)
{
  if (i >= LW_FP_SCAN_SLOTS)
    return 1;
  __u64 slot_addr = w->sp + i * 8;
  if (w->bp_ok && slot_addr >= w->bp)
    return 1;
  __u32 idx = i;
  asm volatile("" : "+r"(idx)); /* keep the mask below: the verifier needs it */
  __u64 v = w->slots[idx & (LW_FP_SCAN_SLOTS - 1)];
  if (!w->bp_ok && v > slot_addr && v - slot_addr < LW_FP_MAX_FRAME_SPAN && !(v & 7)) {
    /* Maybe a saved rbp: believed when the frame it points to holds a return address. */
    __u64 frame[2];
    if (bpf_probe_read_user(frame, sizeof(frame), (void *)v) == 0 &&
        lw_fp_maybe_code(frame[1], w->sp, &w->layout) && lw_fp_after_call(frame[1])) {
      w->bp = v;
      w->bp_ok = 1;
      w->last_ret = 1;
    }
    return 0;
  }
  if (lw_fp_maybe_code(v, w->sp, &w->layout) && lw_fp_returns_from(v, w->pc)) {
    lw_fp_push(w, v);
    w->pc = v;
    /* Above the return into the function that owns the frame pointer lie its locals,
     * where stale return addresses of earlier calls may linger: stop here. */
    if (w->last_ret)
      return 1;
  }
  return 0;
}

/* One frame of the frame-pointer chain. */
static long lw_fp_walk_frame(__u32 i, struct lw_fp_walk_ctx *w)
{
  __u64 bp = w->bp;
  /* The outermost frame has a null frame pointer: stop without reading it. */
  if (bp == 0 || (bp & 7) || bp < w->prev || bp - w->prev > LW_FP_MAX_FRAME_SPAN)
    return 1;
  __u64 frame[2];
  if (bpf_probe_read_user(frame, sizeof(frame), (void *)bp))
    return 1;
  if (frame[1] == 0 || !lw_fp_push(w, frame[1]))
    return 1;
  w->prev = bp + 16;
  w->bp = frame[0];
  return 0;
}

/* Walks the user stack from the user registers into `out` (innermost first); returns the
 * hash of the frames.
 *
 * At a syscall the wrapper that issued it usually has no frame of its own, and wrappers
 * that do (sbrk) use rbp as a plain register: the return addresses are then found by
 * scanning a few slots above [sp] (a value counts when the bytes before it are a call
 * into the function of the frame found before it), and a slot that points to a frame
 * holding a return address is taken as a saved frame pointer to continue the walk from:
 *
 *   mmap (leaf, rbp = caller's frame)     sbrk -> __brk (rbp used as a register)
 *   [sp]    ret -> caller   <- stop       [sp]     ret -> sbrk
 *   ...     caller's locals               [sp+8]   saved rbx
 *   [rbp]   caller's frame  <- walk       [sp+16]  saved rbp -> caller's frame <- walk
 *                                         [sp+24]  saved r12
 *                                         [sp+32]  ret -> caller  <- stop
 *
 * At a fault only [sp] is tried: the caller of a frameless leaf (memset, memcpy). */
static __always_inline __u64 lw_fp_walk(struct pt_regs *regs, bool at_syscall,
                                        struct lw_fp_frames *out)
{
  struct lw_fp_walk_ctx w = {};
  w.st = out;
  w.h = 0xcbf29ce484222325ULL;
  w.sp = BPF_CORE_READ(regs, sp);
  w.bp = BPF_CORE_READ(regs, bp);
  w.prev = w.sp;
  w.pc = BPF_CORE_READ(regs, ip);
  lw_fp_push(&w, w.pc);
  lw_fp_read_layout(&w.layout);

  if (at_syscall) {
    /* A valid rbp belongs to the wrapper's caller: its return address is the one wanted.
     * Otherwise (the wrapper uses rbp as a register) the caller's saved rbp is looked for
     * first, and the return address after it is the last one. */
    w.bp_ok = w.bp > w.sp && w.bp - w.sp < LW_FP_MAX_FRAME_SPAN && !(w.bp & 7);
    w.last_ret = w.bp_ok;
    if (bpf_probe_read_user(w.slots, sizeof(w.slots), (void *)w.sp) == 0)
      bpf_loop(LW_FP_SCAN_SLOTS, lw_fp_scan_slot, &w, 0);
    if (!w.bp_ok)
      w.bp = 0;
  } else {
    __u64 top = 0;
    if (bpf_probe_read_user(&top, sizeof(top), (void *)w.sp) == 0 &&
        lw_fp_maybe_code(top, w.sp, &w.layout) && lw_fp_returns_from(top, w.pc))
      lw_fp_push(&w, top);
  }
  bpf_loop(LW_FP_MAX_DEPTH, lw_fp_walk_frame, &w, 0);
  out->depth = w.n;
  return w.h;
}

#endif
