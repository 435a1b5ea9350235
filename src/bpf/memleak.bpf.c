// SPDX-License-Identifier: GPL-2.0
/* leakwatch memleak: uprobes on the allocator.
 *
 * Allocation functions are traced at entry and (when needed) at return; release functions
 * at entry only.  One program serves every function: the attach cookie says which one it is
 * (enum lw_fn_kind).  Two attach styles share the logic below:
 *   - session (kernel >= 6.13): one uprobe_multi session link; the entry decides whether
 *     the return run is needed and returns non-zero to skip it (unsampled calls pay only
 *     the entry trap);
 *   - classic: a uprobe and a uretprobe per function; the return always runs.
 *
 * Nesting: a probed call made inside another probed call (operator new -> malloc,
 * realloc(NULL) -> malloc, memalign -> malloc, reallocarray -> realloc tail call) is
 * counted once, for the outermost call.  The outer call leaves per-thread state between its
 * entry and its return (calls that can nest always run their return, so the state is always
 * cleared); an entry on the same thread, deeper on the stack, while that state is active is
 * nested.  mmap/mremap/munmap made by the allocator itself (malloc -> mmap, realloc ->
 * mremap, free -> munmap) are recognised by their caller: the return address lies in one of
 * the allocator objects.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/fp_stack.bpf.h"
#include "bpf/memleak.h"
#include "bpf/stack_snapshot.bpf.h"
#include "bpf/unwind.h"

#define LW_COUNTERS_MAX LW_CNT_MAX
#include "bpf/alloc_sampling.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* A nested call happens while its outer call runs; state older than this is stale (a
 * return that never came, e.g. operator new left by an exception). */
#define LW_NEST_WINDOW_NS (100ULL * 1000 * 1000)

/* --cgroup: only tasks under the cgroup in cgroup_filter[0] are traced (the links have no
 * pid filter then: every process mapping the object traps, and is filtered here). */
const volatile __u32 filter_cgroup = 0;
/* --unwind dwarf: every recorded allocation also sends a copy of the user stack (up to
 * snapshot_size bytes) for user space to unwind with the objects' CFI. */
const volatile __u32 unwind_dwarf = 0;
const volatile __u32 snapshot_size = LW_SNAPSHOT_MAX;
/* In-process mode with sampling: the hooks send lw_hook_event records through `hook_events`
 * and touch no hash map (user space keeps the outstanding blocks and the stacks).  Samples
 * are rare by construction, so each one finds these maps cold: a ring written in sequence
 * costs the traced program far fewer cache and TLB misses than the allocs and stack maps. */
const volatile __u32 hook_ring = 0;
const volatile __u64 hook_ring_size = 4096; /* bytes: hook_events' max_entries */
/* --combined-only: keep the per-stack totals (`combined`).  Otherwise user space reads only
 * `allocs`, and keeping them would cost every record and release a cold map access. */
const volatile __u32 keep_combined = 1;

extern bool bpf_session_is_return(void) __ksym __weak;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 1000000);
  __type(key, struct lw_alloc_key);
  __type(value, struct lw_alloc_info);
} allocs SEC(".maps");

/* User stacks by id, walked by this program itself (capture_stack): the kernel's walk
 * (bpf_get_stackid) ends by reading the null frame record at address 0, a page fault that
 * costs more than the rest of the capture together. */
struct lw_stack {
  __u64 ips[LW_MAX_STACK_DEPTH];
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, struct lw_stack);
} stack_traces SEC(".maps");

/* A stack being captured.  A capture writes, hashes and compares only as many slots as its
 * stack is deep, ending it with a zero slot (a few of 127 cache-cold slots); slots after
 * that hold whatever an earlier capture left, and nothing reads them.  `busy` keeps a second
 * program run on this CPU (a preempted one's) from sharing the scratch: it then captures
 * no stack (counted as lost). */
struct lw_stack_scratch {
  struct lw_hook_event ev;  /* ev.ips is the stack (a struct lw_stack) */
  __u32 depth;
  __u32 pad;
  __u64 busy;               /* 64 bits: the BPF target's atomic exchange */
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct lw_stack_scratch);
} stack_scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, struct lw_combined_key);
  __type(value, struct lw_combined);
} combined SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, struct lw_thread_state);
} threads SEC(".maps");

/* Inodes of the objects whose allocator is probed: their own mmap calls are internal. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u64);
  __type(value, __u32);
} allocator_inodes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} cgroup_filter SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} snapshots SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} hook_events SEC(".maps");

static __always_inline bool traced_task(void)
{
  return !filter_cgroup || bpf_current_task_under_cgroup(&cgroup_filter, 0) == 1;
}

/* Calls that can contain another probed call always run their return probe. */
static __always_inline bool may_nest(__u32 kind, __u64 old_ptr)
{
  switch (kind) {
  case LW_FN_NEW:
  case LW_FN_REALLOCARRAY:
  case LW_FN_POSIX_MEMALIGN:
  case LW_FN_ALIGNED_ALLOC:
  case LW_FN_VALLOC:
    return true;
  case LW_FN_REALLOC:
    return old_ptr == 0;
  default:
    return false;
  }
}

static __always_inline bool is_nested(const struct lw_thread_state *st, __u64 sp, __u32 kind,
                                      __u64 now)
{
  if (!st->active || now - st->ts > LW_NEST_WINDOW_NS)
    return false;
  if (sp < st->sp)
    return true;
  /* Same frame, other function: the outer one tail-called into us. */
  return sp == st->sp && kind != st->kind;
}

struct vma_ctx {
  bool internal;
};

static long check_vma(struct task_struct *task, struct vm_area_struct *vma, struct vma_ctx *c)
{
  struct file *f = BPF_CORE_READ(vma, vm_file);
  if (!f)
    return 0;
  __u64 ino = BPF_CORE_READ(f, f_inode, i_ino);
  c->internal = bpf_map_lookup_elem(&allocator_inodes, &ino) != NULL;
  return 0;
}

/* Whether the function probed at this entry was called from an allocator object. */
static __always_inline bool called_by_allocator(struct pt_regs *ctx)
{
  __u64 ret_addr = 0;
  if (bpf_probe_read_user(&ret_addr, sizeof(ret_addr), (void *)PT_REGS_SP(ctx)))
    return false;
  struct vma_ctx c = {};
  bpf_find_vma(bpf_get_current_task_btf(), ret_addr, check_vma, &c, 0);
  return c.internal;
}

static __always_inline void emit(__u32 tgid, __u32 tid, __u64 addr, __u64 size, __u32 kind,
                                 __u32 type)
{
  struct lw_event e = {
      .ts = bpf_ktime_get_ns(), .addr = addr, .size = size,
      .tgid = tgid, .tid = tid, .kind = kind, .type = type,
  };
  if (bpf_ringbuf_output(&events, &e, sizeof(e), 0))
    count(LW_CNT_EVENTS_LOST);
}

static __always_inline void combined_add(__u32 tgid, __s32 stack_id, __s64 size, __s64 n)
{
  if (!keep_combined)
    return;
  struct lw_combined_key key = {.tgid = tgid, .stack_id = stack_id};
  struct lw_combined *c = bpf_map_lookup_elem(&combined, &key);
  if (!c) {
    if (n < 0)
      return;
    struct lw_combined init = {};
    /* NOEXIST: another CPU may have inserted it meanwhile; the lookup finds either. */
    bpf_map_update_elem(&combined, &key, &init, BPF_NOEXIST);
    c = bpf_map_lookup_elem(&combined, &key);
    if (!c) {
      count(LW_CNT_COMBINED_FULL);
      return;
    }
  }
  __sync_fetch_and_add(&c->total_size, size);
  __sync_fetch_and_add(&c->number_of_allocs, n);
}

static __always_inline void release(__u64 addr, __u64 id, __u32 kind)
{
  struct lw_alloc_key key = {.addr = addr, .tgid = id >> 32};
  struct lw_alloc_info *info = bpf_map_lookup_elem(&allocs, &key);
  if (!info)
    return;
  __u64 size = info->size;
  combined_add(key.tgid, info->stack_id, -(__s64)size, -1);
  bpf_map_delete_elem(&allocs, &key);
  count(LW_CNT_FREED);
  if (trace_events)
    emit(key.tgid, (__u32)id, addr, size, kind, 1);
}

/* Where the allocating code is when a record is made: at an allocation function's return,
 * the probe's registers; at a preload hook's entry, the state of the caller of malloc/new
 * once that call returns (bpf/preload_abi.h: the wrapper calls the hook from its own
 * frame, so its frame record holds the caller's rbp and the return address into it). */
struct lw_site {
  __u64 ip, sp, bp;
};

/* Copies the registers and the top of the user stack for DWARF unwinding
 * (bpf/stack_snapshot.bpf.h). */
static __always_inline void send_snapshot(const struct lw_site *site, __u64 id, __u64 addr)
{
  __u32 zero = 0;
  struct lw_snapshot_slot *slot = bpf_map_lookup_elem(&snapshot_buf, &zero);
  if (!slot)
    return;
  struct lw_stack_snapshot *snap = &slot->snap;
  snap->ip = site->ip;
  snap->sp = site->sp;
  snap->bp = site->bp;
  snap->alloc_addr = addr;
  snap->tgid = id >> 32;
  snap->tid = (__u32)id;
  snap->flags = 0;
  __u32 copied = lw_snapshot_copy(snap, snapshot_size, 0);
  if (copied > LW_SNAPSHOT_MAX)
    return;
  /* No wakeup: user space drains the ring on a short timer; a wakeup is an irq_work and a
   * context switch per record, several microseconds on the traced thread. */
  if (bpf_ringbuf_output(&snapshots, snap, LW_SNAPSHOT_HEADER_SIZE + copied, BPF_RB_NO_WAKEUP)) {
    count(LW_CNT_SNAPSHOTS_LOST);
    return;
  }
  count(LW_CNT_SNAPSHOTS);
  __u32 idx = LW_CNT_SNAPSHOT_BYTES;
  __u64 *v = bpf_map_lookup_elem(&counters, &idx);
  if (v)
    *v += copied;
}

#define LW_STACK_ID_MASK 0x3fffffffu /* ids stay below bit 30 (user space marks DWARF ids) */
#define LW_STACK_PROBES 4

/* Whether the stored stack `a` is `b`, which ends at `depth` (its slot `depth` is the zero
 * that ends it, unless it fills all 127): a deeper `a` differs at slot `depth`. */
static __always_inline bool same_stack(const struct lw_stack *a, const struct lw_stack *b,
                                       __u32 depth)
{
  for (int i = 0; i < LW_MAX_STACK_DEPTH; i++) {
    if (a->ips[i] != b->ips[i])
      return false;
    if (i >= depth)
      break;
  }
  return true;
}

/* Return addresses the frame-pointer chain does not show.  At an allocation function's
 * return the ip may lie in a function that keeps no frame pointer and called the allocator
 * for its own caller: libstdc++'s operator new (not probed: it only calls malloc), strdup,
 * a wrapper compiled without frame pointers.  rbp then still belongs to that function's
 * caller, whose frame record names the caller's caller: the caller itself is missing.
 *
 *   operator new -> malloc, at malloc's return       the test: does the return address in
 *   [sp]     saved rbx                               rbp's frame record return from a call
 *   [sp+8]   ret -> make_widget   <- recovered       into the function holding ip?  If not,
 *   ...      make_widget's locals                    the slots from sp up to rbp are searched
 *   [rbp+8]  ret -> main          (the chain)        for the return address that does.
 *
 * A recovered frame may itself be frameless (nothrow new -> new -> malloc): the search goes
 * on until the return address in rbp's record returns from the last frame found.  A slot
 * counts when it returns from a call into a function starting near the frame before it:
 * the function called may have tail-jumped to a neighbour (new[] -> new). */
#define LW_CALLER_SLOTS 16
#define LW_CALLER_MAX 3
/* rbp is believed to be the frame of ip's own function when the function the return
 * address in its record called starts at most this far before ip: a function of any
 * reasonable size, while a frameless function elsewhere (another object) is not taken for
 * it. */
#define LW_CALLER_OWNER_SPAN (256u << 10)

struct lw_caller_scan {
  __u64 sp, bp, cur;
  __u64 owner;      /* start of the function that owns rbp's frame (0: unknown) */
  __u64 owner_ret;  /* the return address in rbp's frame record (0: rbp is not a frame) */
  __u32 n;
  __u32 pad;
  __u64 found[4];   /* LW_CALLER_MAX used; a power of two for the index mask */
  __u64 slots[LW_CALLER_SLOTS];
  struct lw_fp_layout layout;
};

static __always_inline bool owns_frame(const struct lw_caller_scan *c, __u64 pc)
{
  return c->owner && c->owner <= pc && pc - c->owner < LW_CALLER_OWNER_SPAN;
}

/* bpf_loop's context must live on the BPF stack; the state is a per-CPU map value. */
struct lw_caller_scan_ref {
  struct lw_caller_scan *c;
};

static long caller_scan_slot(__u32 i, struct lw_caller_scan_ref *ref)
{
  struct lw_caller_scan *c = ref->c;
  if (i >= LW_CALLER_SLOTS || c->n >= LW_CALLER_MAX)
    return 1;
  if (c->owner_ret && c->sp + i * 8 >= c->bp)
    return 1;
  __u32 idx = i;
  asm volatile("" : "+r"(idx)); /* keep the mask below: the verifier needs it */
  __u64 v = c->slots[idx & (LW_CALLER_SLOTS - 1)];
  if (!lw_fp_maybe_code(v, c->sp, &c->layout) ||
      !lw_fp_near_function(lw_fp_cached_target(v, true), c->cur))
    return 0;
  __u32 k = c->n;
  asm volatile("" : "+r"(k));
  if (k < LW_CALLER_MAX)
    c->found[k & 3] = v;
  c->n = k + 1;
  c->cur = v;
  /* Found the caller of the function that owns rbp: the chain goes on from here. */
  return owns_frame(c, v) ? 1 : 0;
}

static __always_inline __u32 frameless_callers(const struct lw_site *site,
                                               struct lw_caller_scan *c)
{
  c->sp = site->sp;
  c->bp = site->bp;
  c->cur = site->ip;
  c->n = 0;
  c->owner = 0;
  c->owner_ret = 0;
  lw_fp_read_layout(&c->layout);
  /* bp == sp: the caller's frame has no locals (its record is right at sp). */
  if (c->bp >= c->sp && c->bp - c->sp < LW_FP_MAX_FRAME_SPAN && !(c->bp & 7) &&
      bpf_probe_read_user(&c->owner_ret, sizeof(c->owner_ret), (void *)(c->bp + 8)))
    c->owner_ret = 0;
  if (c->owner_ret && lw_fp_maybe_code(c->owner_ret, c->sp, &c->layout))
    c->owner = lw_fp_cached_target(c->owner_ret, true);
  /* The common case: ip's function keeps the frame pointer; nothing is missing. */
  if (owns_frame(c, c->cur))
    return 0;
  if (bpf_probe_read_user(c->slots, sizeof(c->slots), (void *)c->sp))
    return 0;
  struct lw_caller_scan_ref ref = {.c = c};
  bpf_loop(LW_CALLER_SLOTS, caller_scan_slot, &ref, 0);
  return c->n < LW_CALLER_MAX ? c->n : LW_CALLER_MAX;
}

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct lw_caller_scan);
} caller_scratch SEC(".maps");

/* Walks the frame-pointer chain from the site (at a return probe: the caller's ip and rbp,
 * so the stack is complete; frames the chain skips are recovered first, see
 * frameless_callers) into the per-CPU scratch, ended by a zero slot.  Returns the scratch,
 * taken (release it with put_scratch), or NULL when there is no stack; its depth in *depth
 * and the stack's hash in *hash.  The walk stops at a null or non-increasing frame pointer
 * without reading it. */
static __always_inline struct lw_stack_scratch *walk_stack(const struct lw_site *site,
                                                           __u32 *depth_out, __u64 *hash)
{
  if (!site->ip)
    return NULL;
  __u32 zero = 0;
  struct lw_stack_scratch *scratch = bpf_map_lookup_elem(&stack_scratch, &zero);
  struct lw_caller_scan *c = bpf_map_lookup_elem(&caller_scratch, &zero);
  if (!scratch || !c)
    return NULL;
  if (__sync_lock_test_and_set(&scratch->busy, 1))
    return NULL; /* another run on this CPU (preempted) holds it */
  __u64 *ips = scratch->ev.ips;
  /* With DWARF unwinding the stack comes from the snapshot; this one is only its fallback. */
  __u32 extra = unwind_dwarf ? 0 : frameless_callers(site, c);
  __u64 ip = site->ip, fp = site->bp;
  __u64 h = 0xcbf29ce484222325ULL ^ ip;
  __u32 depth = LW_MAX_STACK_DEPTH;
  ips[0] = ip;
  for (int i = 1; i < LW_MAX_STACK_DEPTH; i++) {
    if (i <= LW_CALLER_MAX && i <= extra) {
      __u64 r = c->found[(i - 1) & 3]; /* i - 1 < LW_CALLER_MAX <= 4 */
      ips[i] = r;
      h = (h ^ r) * 0x100000001b3ULL;
      continue;
    }
    __u64 frame[2] = {0, 0};  /* saved rbp, return address */
    if (fp && bpf_probe_read_user(frame, sizeof(frame), (void *)fp) == 0 && frame[1]) {
      ips[i] = frame[1];
      h = (h ^ frame[1]) * 0x100000001b3ULL;
      fp = frame[0] > fp ? frame[0] : 0;
      continue;
    }
    ips[i] = 0; /* the end */
    depth = i;
    break;
  }
  /* Read back from the map: the verifier then checks what follows once for any depth,
   * rather than once for each depth the walk can end at. */
  scratch->depth = depth;
  depth = *(volatile __u32 *)&scratch->depth;
  *depth_out = depth;
  *hash = h ^ (h >> 29);
  return scratch;
}

static __always_inline void put_scratch(struct lw_stack_scratch *scratch)
{
  /* A plain store: the scratch is this CPU's, and the program cannot migrate. */
  *(volatile __u64 *)&scratch->busy = 0;
}

/* Stores the walked stack; returns its id, < 0 when lost.  Equal stacks get equal ids (a
 * hash of the frames, with linear probing on collisions). */
static __always_inline __s32 capture_stack(const struct lw_site *site)
{
  __u32 depth = 0;
  __u64 h = 0;
  struct lw_stack_scratch *scratch = walk_stack(site, &depth, &h);
  if (!scratch)
    return -1;
  struct lw_stack *st = (struct lw_stack *)scratch->ev.ips;
  __s32 found = -1;
  for (__u32 probe = 0; probe < LW_STACK_PROBES; probe++) {
    __u32 id = ((__u32)h + probe) & LW_STACK_ID_MASK;
    /* Known stacks (the common case) are found by one lookup. */
    struct lw_stack *old = bpf_map_lookup_elem(&stack_traces, &id);
    if (!old) {
      if (bpf_map_update_elem(&stack_traces, &id, st, BPF_NOEXIST) == 0) {
        found = (__s32)id;
        break;
      }
      old = bpf_map_lookup_elem(&stack_traces, &id); /* another CPU stored it meanwhile */
    }
    if (old && same_stack(old, st, depth)) {
      found = (__s32)id;
      break;
    }
  }
  put_scratch(scratch);
  return found;
}

/* The ring wakes user space only when it is half full: a wakeup per record would cost the
 * traced thread an irq_work and a context switch; user space drains it on a short timer.
 * Returns the flags for bpf_ringbuf_output, or -1 for an allocation record when the ring is
 * three quarters full: the last quarter is kept for frees, whose loss would leave a freed
 * block reported as outstanding, where a lost sample only lowers the estimate's precision. */
static __always_inline long hook_ring_flags(bool alloc)
{
  __u64 used = bpf_ringbuf_query(&hook_events, BPF_RB_AVAIL_DATA);
  if (alloc && used > hook_ring_size / 4 * 3)
    return -1;
  return used > hook_ring_size / 2 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

_Static_assert(sizeof(struct lw_hook_header) == LW_HOOK_EVENT_HEADER, "hook event header");

/* A sampled allocation as a hook_events record with its stack. */
static __always_inline void send_hook_alloc(const struct lw_site *site, __u64 id, __u64 addr,
                                            __u64 size)
{
  long alloc_flags = hook_ring_flags(true);
  if (alloc_flags < 0) {
    count(LW_CNT_HOOK_EVENTS_LOST);
    return;
  }
  __u32 depth = 0;
  __u64 h = 0;
  struct lw_stack_scratch *scratch = walk_stack(site, &depth, &h);
  if (!scratch) {
    /* No stack: the record still counts the block (its stack is lost). */
    struct lw_hook_header e = {.addr = addr, .size = size, .ts = bpf_ktime_get_ns(),
                               .tgid = id >> 32, .type = LW_HOOK_EV_ALLOC};
    if (bpf_ringbuf_output(&hook_events, &e, LW_HOOK_EVENT_HEADER, alloc_flags))
      count(LW_CNT_HOOK_EVENTS_LOST);
    else
      count(LW_CNT_STACK_LOST);
    return;
  }
  struct lw_hook_event *e = &scratch->ev;
  e->h.addr = addr;
  e->h.size = size;
  e->h.ts = bpf_ktime_get_ns();
  e->h.tgid = id >> 32;
  e->h.type = LW_HOOK_EV_ALLOC;
  e->h.depth = depth;
  __u64 len = LW_HOOK_EVENT_HEADER + (__u64)(depth & 127) * 8;
  long err = len > sizeof(*e) ? -1 : bpf_ringbuf_output(&hook_events, e, len, alloc_flags);
  put_scratch(scratch);
  if (err)
    count(LW_CNT_HOOK_EVENTS_LOST);
  else
    count(LW_CNT_RECORDED);
}

static __always_inline void record(const struct lw_site *site, __u64 id, __u64 addr,
                                   __u64 size, __u32 kind)
{
  struct lw_alloc_key key = {.addr = addr, .tgid = id >> 32};
  struct lw_alloc_info info = {
      .size = size, .timestamp_ns = bpf_ktime_get_ns(), .kind = kind,
  };
  info.stack_id = capture_stack(site);
  if (info.stack_id < 0)
    count(LW_CNT_STACK_LOST);

  /* An address still in the map means its free was not seen: replace it consistently. */
  struct lw_alloc_info *stale = bpf_map_lookup_elem(&allocs, &key);
  if (stale)
    combined_add(key.tgid, stale->stack_id, -(__s64)stale->size, -1);
  if (bpf_map_update_elem(&allocs, &key, &info, BPF_ANY)) {
    count(LW_CNT_ALLOCS_FULL);
    return;
  }
  count(LW_CNT_RECORDED);
  combined_add(key.tgid, info.stack_id, size, 1);
  if (unwind_dwarf)
    send_snapshot(site, id, addr);
  if (trace_events)
    emit(key.tgid, (__u32)id, addr, size, kind, 0);
}

static __always_inline bool mul_overflows(__u64 a, __u64 b)
{
  if (!((a | b) >> 32))
    return false;
  __u64 limit = a ? ~0ULL / a : ~0ULL;
  /* keep clang from turning the division into a 128-bit multiply BPF cannot do */
  asm volatile("" : "+r"(limit));
  return a && b > limit;
}

/* Returns true when the return run is wanted. */
static __always_inline bool alloc_entry(struct pt_regs *ctx, __u32 kind)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tid = (__u32)id;
  __u64 now = bpf_ktime_get_ns();
  __u64 sp = PT_REGS_SP(ctx);

  count(LW_CNT_ALLOC_CALLS);
  struct lw_thread_state *st = bpf_map_lookup_elem(&threads, &tid);
  if (st && is_nested(st, sp, kind, now)) {
    count(LW_CNT_NESTED);
    return false;
  }

  __u64 a0 = PT_REGS_PARM1(ctx), a1 = PT_REGS_PARM2(ctx), a2 = PT_REGS_PARM3(ctx);
  __u64 size = 0, old_ptr = 0, memptr = 0;
  switch (kind) {
  case LW_FN_MALLOC:
  case LW_FN_VALLOC:
  case LW_FN_NEW:
    size = a0;
    break;
  case LW_FN_CALLOC:
    if (mul_overflows(a0, a1))
      return false; /* calloc fails */
    size = a0 * a1;
    break;
  case LW_FN_REALLOC:
    old_ptr = a0;
    size = a1;
    break;
  case LW_FN_REALLOCARRAY:
    if (mul_overflows(a1, a2))
      return false;
    old_ptr = a0;
    size = a1 * a2;
    break;
  case LW_FN_POSIX_MEMALIGN:
    memptr = a0;
    size = a2;
    break;
  case LW_FN_ALIGNED_ALLOC:
    size = a1;
    break;
  case LW_FN_MMAP:
    size = a1;
    if (called_by_allocator(ctx)) {
      count(LW_CNT_INTERNAL_MAP);
      return false;
    }
    break;
  case LW_FN_MREMAP:
    old_ptr = a0;
    size = a2;
    if (called_by_allocator(ctx)) {
      count(LW_CNT_INTERNAL_MAP);
      return false;
    }
    break;
  default:
    return false;
  }

  bool sampled = sample_decision(size);
  if (sampled)
    count(LW_CNT_SAMPLED);
  bool need_return = sampled || may_nest(kind, old_ptr);
  if (!need_return && old_ptr) {
    /* The old block is released only if the call succeeds: only the return knows. */
    struct lw_alloc_key key = {.addr = old_ptr, .tgid = id >> 32};
    need_return = bpf_map_lookup_elem(&allocs, &key) != NULL;
  }
  if (!need_return)
    return false;

  struct lw_thread_state ns = {
      .sp = sp, .ts = now, .size = size, .old_ptr = old_ptr, .memptr = memptr,
      .kind = kind, .active = 1, .sampled = sampled,
  };
  if (bpf_map_update_elem(&threads, &tid, &ns, BPF_ANY)) {
    count(LW_CNT_STATE_FULL);
    return false;
  }
  return true;
}

static __always_inline void alloc_return(struct pt_regs *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tid = (__u32)id;

  count(LW_CNT_RETURN_CALLS);
  struct lw_thread_state *st = bpf_map_lookup_elem(&threads, &tid);
  if (!st || !st->active)
    return;
  struct lw_thread_state s = *st;
  st->active = 0;

  __u64 ret = PT_REGS_RC(ctx);
  __u64 addr = ret;
  bool ok;
  switch (s.kind) {
  case LW_FN_POSIX_MEMALIGN:
    ok = (int)ret == 0 && s.memptr &&
         bpf_probe_read_user(&addr, sizeof(addr), (void *)s.memptr) == 0;
    break;
  case LW_FN_MMAP:
  case LW_FN_MREMAP:
    ok = ret != ~0ULL;
    break;
  default:
    ok = ret != 0;
    break;
  }

  if (s.old_ptr) {
    /* realloc(p, 0) returning NULL has freed p (glibc). */
    bool released = ok || (s.kind == LW_FN_REALLOC && s.size == 0);
    if (released)
      release(s.old_ptr, id, s.kind);
    if (!ok && released)
      return;
  }
  if (!ok) {
    count(LW_CNT_FAILED_ALLOCS);
    return;
  }
  if (s.sampled) {
    struct lw_site site = {
        .ip = PT_REGS_IP(ctx), .sp = PT_REGS_SP(ctx), .bp = PT_REGS_FP(ctx),
    };
    record(&site, id, addr, s.size, s.kind);
  }
}

static __always_inline void free_entry(struct pt_regs *ctx, __u32 kind)
{
  count(LW_CNT_FREE_CALLS);
  __u64 ptr = PT_REGS_PARM1(ctx);
  if (!ptr)
    return;
  release(ptr, bpf_get_current_pid_tgid(), kind);
}

/* ---- session style: one program, entry and return ---- */

SEC("uprobe")
int lw_alloc_session(struct pt_regs *ctx)
{
  if (!traced_task())
    return 1;
  if (bpf_session_is_return()) {
    alloc_return(ctx);
    return 0;
  }
  return alloc_entry(ctx, (__u32)bpf_get_attach_cookie(ctx)) ? 0 : 1;
}

/* uprobe_multi (entry only) for release functions */
SEC("uprobe")
int lw_free_multi(struct pt_regs *ctx)
{
  if (!traced_task())
    return 0;
  free_entry(ctx, (__u32)bpf_get_attach_cookie(ctx));
  return 0;
}

/* ---- classic style: a uprobe and a uretprobe per function ---- */

SEC("uprobe")
int lw_alloc_entry(struct pt_regs *ctx)
{
  if (!traced_task())
    return 0;
  alloc_entry(ctx, (__u32)bpf_get_attach_cookie(ctx));
  return 0;
}

SEC("uretprobe")
int lw_alloc_return(struct pt_regs *ctx)
{
  alloc_return(ctx);
  return 0;
}

SEC("uprobe")
int lw_free_entry(struct pt_regs *ctx)
{
  if (!traced_task())
    return 0;
  free_entry(ctx, (__u32)bpf_get_attach_cookie(ctx));
  return 0;
}

/* ---- in-process mode: the preload library's hooks (bpf/preload_abi.h) ----
 *
 * The library decided in-process which allocations are sampled; every hook call is one.
 * Both hooks are a 5-byte NOP, which this kernel turns into a call instead of a trap. */

SEC("uprobe")
int lw_hook_alloc(struct pt_regs *ctx)
{
  if (!traced_task())
    return 0;
  __u64 id = bpf_get_current_pid_tgid();
  __u64 ptr = PT_REGS_PARM1(ctx), size = PT_REGS_PARM2(ctx);
  count(LW_CNT_ALLOC_CALLS);
  if (!ptr || size < min_size || size > max_size)
    return 0;
  count(LW_CNT_SAMPLED);
  __u64 frame[2] = {0, 0}; /* the wrapper's frame record: caller's rbp, return address */
  __u64 fp = PT_REGS_FP(ctx);
  if (!fp || bpf_probe_read_user(frame, sizeof(frame), (void *)fp))
    frame[0] = frame[1] = 0; /* no caller: recorded without a stack (counted as lost) */
  struct lw_site site = {.ip = frame[1], .sp = fp + 16, .bp = frame[0]};
  if (hook_ring) {
    send_hook_alloc(&site, id, ptr, size);
    if (trace_events)
      emit(id >> 32, (__u32)id, ptr, size, LW_FN_HOOK_ALLOC, 0);
    return 0;
  }
  record(&site, id, ptr, size, LW_FN_HOOK_ALLOC);
  return 0;
}

SEC("uprobe")
int lw_hook_free(struct pt_regs *ctx)
{
  if (!traced_task())
    return 0;
  count(LW_CNT_FREE_CALLS);
  __u64 ptr = PT_REGS_PARM1(ctx);
  if (!ptr)
    return 0;
  if (hook_ring) {
    __u64 id = bpf_get_current_pid_tgid();
    struct lw_hook_header e = {.addr = ptr, .tgid = id >> 32, .type = LW_HOOK_EV_FREE};
    if (bpf_ringbuf_output(&hook_events, &e, LW_HOOK_EVENT_HEADER, hook_ring_flags(false)))
      count(LW_CNT_HOOK_EVENTS_LOST);
    else
      count(LW_CNT_FREED);
    if (trace_events)
      emit(id >> 32, (__u32)id, ptr, 0, LW_FN_HOOK_FREE, 1);
    return 0;
  }
  release(ptr, bpf_get_current_pid_tgid(), LW_FN_HOOK_FREE);
  return 0;
}
