// SPDX-License-Identifier: GPL-2.0
/* leakwatch layer 1: every process's memory counters in one read (a BPF task iterator).
 *
 * Reading the iterator's file runs the program once per task of the system (threads
 * included) and once more at the end with no task.  A process (its thread-group leader)
 * becomes one lw_ti_process record, each of its other threads one lw_ti_thread record
 * (task_iter.h); kernel threads and processes without an address space (zombies) none.
 *
 * The mm counters (mm->rss_stat[], struct percpu_counter since 6.2) keep a global count
 * and a per-CPU part each CPU folds into it once it passes the batch; percpu_counter_sum()
 * adds the parts.  lw_ti_tasks_sum does the same and reports both the sum and the global
 * count; lw_ti_tasks reports the count alone, for kernels or callers that cannot load the
 * summing program (before 5.19, or without CAP_PERFMON).
 * On kernels before 6.2 the counters were atomics folded from per-task caches: the count is
 * then the only figure, as it is for /proc.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "bpf/task_iter.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_KTHREAD 0x00200000

/* CPUs whose per-CPU counter parts are summed (libbpf_num_possible_cpus()). */
const volatile __u32 nr_cpus = 1;

/* Each CPU's per-CPU offset (the kernel's __per_cpu_offset[cpu]), found once.  This kernel
 * keeps no data symbols in kallsyms and its BTF has no percpu type tags, so neither a
 * this_cpu_off ksym nor bpf_per_cpu_ptr() on the counters works; a per-CPU array map gives
 * the offsets instead: bpf_map_lookup_percpu_elem() returns pptrs[0] + offset(cpu), and
 * pptrs[0] is read from the map itself.  (Reading the pointers as numbers needs
 * CAP_PERFMON; without it the summing program does not load and the counting one runs.) */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} cpu_probe SEC(".maps");

__u64 cpu_offsets[LW_TI_MAX_CPUS];
__u8 cpu_valid[LW_TI_MAX_CPUS];
__u32 offsets_ready;

/* The address a pointer register holds, as a number the verifier lets us compute with. */
static __always_inline __u64 address_of(void *ptr)
{
  __u64 addr = 0;
  bpf_probe_read_kernel(&addr, sizeof addr, &ptr);
  return addr;
}

static long find_offset(__u32 cpu, void *data)
{
  __u64 base = *(__u64 *)data;
  __u32 zero = 0;
  if (cpu >= LW_TI_MAX_CPUS)
    return 1;
  barrier_var(cpu);           /* for the verifier: keeps the mask below */
  cpu &= LW_TI_MAX_CPUS - 1;
  void *v = bpf_map_lookup_percpu_elem(&cpu_probe, &zero, cpu);
  if (!v)
    return 0;
  cpu_offsets[cpu] = address_of(v) - base;
  cpu_valid[cpu] = 1;
  return 0;
}

static __always_inline void find_offsets(void)
{
  __u64 map = address_of(&cpu_probe);
  __u64 base = 0;
  if (bpf_probe_read_kernel(&base, sizeof base,
                            (void *)(map + bpf_core_field_offset(struct bpf_array, pptrs))) ||
      !base)
    return;
  bpf_loop(nr_cpus < LW_TI_MAX_CPUS ? nr_cpus : LW_TI_MAX_CPUS, find_offset, &base, 0);
  offsets_ready = 1;
}

struct sum_ctx {
  __u64 parts[LW_TI_MEMBERS];  /* the counters' percpu pointers (s32 __percpu *) */
  __s64 sum[LW_TI_MEMBERS];
};

static long add_cpu(__u32 cpu, void *data)
{
  struct sum_ctx *c = data;
  if (cpu >= LW_TI_MAX_CPUS)
    return 1;
  barrier_var(cpu);
  cpu &= LW_TI_MAX_CPUS - 1;
  if (!cpu_valid[cpu])
    return 0;
  __u64 off = cpu_offsets[cpu];
  for (int m = 0; m < LW_TI_MEMBERS; m++) {
    __s32 part = 0;
    if (c->parts[m] && bpf_probe_read_kernel(&part, sizeof part, (void *)(c->parts[m] + off)) == 0)
      c->sum[m] += part;
  }
  return 0;
}

/* Before 6.2 the counters were a struct mm_rss_stat of atomics. */
struct mm_rss_stat___pre62 {
  atomic_long_t count[LW_TI_MEMBERS];
};
struct mm_struct___pre62 {
  struct mm_rss_stat___pre62 rss_stat;
};

static __always_inline void read_counts(struct mm_struct *mm, __s64 out[LW_TI_MEMBERS])
{
  if (bpf_core_type_exists(struct mm_rss_stat___pre62)) {
    struct mm_struct___pre62 *old = (void *)mm;
    for (int m = 0; m < LW_TI_MEMBERS; m++)
      out[m] = BPF_CORE_READ(old, rss_stat.count[m].counter);
    return;
  }
  out[0] = mm->rss_stat[0].count;
  out[1] = mm->rss_stat[1].count;
  out[2] = mm->rss_stat[2].count;
  out[3] = mm->rss_stat[3].count;
}

static __always_inline __u64 counters_ptr(struct mm_struct *mm, int m)
{
  /* Constant indices: a variable offset into a BTF object is refused. */
  switch (m) {
  case 0: return (__u64)mm->rss_stat[0].counters;
  case 1: return (__u64)mm->rss_stat[1].counters;
  case 2: return (__u64)mm->rss_stat[2].counters;
  default: return (__u64)mm->rss_stat[3].counters;
  }
}

static __always_inline int visit(struct bpf_iter__task *ctx, const int sum_percpu)
{
  struct seq_file *seq = ctx->meta->seq;
  struct task_struct *task = ctx->task;
  if (!task)
    return 0;  /* the end of the walk */
  if (task->flags & PF_KTHREAD)
    return 0;
  struct mm_struct *mm = task->mm;
  if (!mm)
    return 0;  /* exiting, or a zombie leader: /proc shows no memory for it either */

  if (task->pid != task->tgid) {
    struct lw_ti_thread t = {};
    t.kind = LW_TI_KIND_THREAD;
    t.tgid = task->tgid;
    t.min_flt = task->min_flt;
    t.maj_flt = task->maj_flt;
    t.cpu_ns = task->se.sum_exec_runtime;
    bpf_seq_write(seq, &t, sizeof t);
    return 0;
  }

  struct lw_ti_process p = {};
  p.kind = LW_TI_KIND_PROCESS;
  p.tgid = task->tgid;
  /* Direct (BTF) loads, not bpf_probe_read: ~0.3 us less per process, a third of the
   * program's cost at 10,000 processes (BENCHMARKS.md, layer 1). */
  p.ppid = task->real_parent->tgid;
  p.start_boottime_ns = task->start_boottime;
  p.cgroup_id = task->cgroups->dfl_cgrp->kn->id;
  read_counts(mm, p.pages_count);
  p.total_vm = mm->total_vm;
  struct signal_struct *sig = task->signal;
  p.nr_threads = sig->nr_threads;
  p.min_flt = task->min_flt + sig->min_flt;
  p.maj_flt = task->maj_flt + sig->maj_flt;
  p.cpu_ns = task->se.sum_exec_runtime + sig->sum_sched_runtime;
  __builtin_memcpy(p.comm, task->comm, sizeof p.comm);  /* NUL-terminated by the kernel */

  if (sum_percpu && !offsets_ready)
    find_offsets();
  if (sum_percpu && offsets_ready && !bpf_core_type_exists(struct mm_rss_stat___pre62)) {
    struct sum_ctx c = {};
    for (int m = 0; m < LW_TI_MEMBERS; m++) {
      c.parts[m] = counters_ptr(mm, m);
      c.sum[m] = p.pages_count[m];
    }
    bpf_loop(nr_cpus < LW_TI_MAX_CPUS ? nr_cpus : LW_TI_MAX_CPUS, add_cpu, &c, 0);
    for (int m = 0; m < LW_TI_MEMBERS; m++) p.pages_sum[m] = c.sum[m];
  } else {
    for (int m = 0; m < LW_TI_MEMBERS; m++) p.pages_sum[m] = p.pages_count[m];
  }
  bpf_seq_write(seq, &p, sizeof p);
  return 0;
}

SEC("iter/task")
int lw_ti_tasks_sum(struct bpf_iter__task *ctx)
{
  return visit(ctx, 1);
}

SEC("iter/task")
int lw_ti_tasks(struct bpf_iter__task *ctx)
{
  return visit(ctx, 0);
}
