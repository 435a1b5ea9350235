// SPDX-License-Identifier: GPL-2.0
/* What a trace costs its target, measured rather than estimated: a CPU-clock sample of every
 * CPU (perf_event) that finds the target running records where its user code was, the
 * instruction pointer saved at its last entry to the kernel (or the one it was interrupted
 * at).  A sample taken while the target is in a uprobe's trap, or deferred to the return
 * from one (the trap runs with interrupts off for much of its time), is at a probed
 * instruction or in the kernel's [uprobes] page; user space sorts the addresses into "at the
 * probes" and "its own work" (probe/cost_sampler.h).
 *
 * A return probe is the exception: its trap (a breakpoint, or the uretprobe system call)
 * sets the saved instruction pointer back to the caller's return address before the
 * handlers run.  So a sample taken in the kernel is looked at more closely: when its kernel
 * stack passes through the kernel's trap entry points (lw_cost_trap_ranges: the breakpoint
 * and single-step exceptions, the uprobe system calls, the uprobe handlers; found in
 * /proc/kallsyms by user space) it is the probes', with LW_COST_IN_TRAP set on its address.
 * Its address then also marks a return site, where a held-back interrupt lands once the
 * trap is over: user space counts samples there as the probes' too. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;

/* user instruction pointer -> samples */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, __u64);
} lw_cost_ips SEC(".maps");

#define LW_COST_IN_TRAP (1ull << 63) /* user addresses never have it */
#define LW_COST_MAX_RANGES 16
#define LW_COST_STACK_DEPTH 32

/* [start, end) of the kernel functions that mean "in a probe's trap"; count used. */
const volatile __u64 lw_cost_trap_ranges[LW_COST_MAX_RANGES][2] = {};
const volatile __u32 lw_cost_trap_range_count = 0;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64[LW_COST_STACK_DEPTH]);
} lw_cost_stack SEC(".maps");

/* Samples of the target; those the full map could not keep (counted, not lost). */
__u64 lw_cost_samples = 0;
__u64 lw_cost_dropped = 0;

static __always_inline int in_trap(struct bpf_perf_event_data *ctx)
{
  __u32 zero = 0;
  __u64 *frames = bpf_map_lookup_elem(&lw_cost_stack, &zero);
  if (!frames)
    return 0;
  long bytes = bpf_get_stack(ctx, frames, LW_COST_STACK_DEPTH * sizeof(__u64), 0);
  if (bytes <= 0)
    return 0;
  __u32 n = (__u32)bytes / sizeof(__u64);
  for (__u32 i = 0; i < LW_COST_STACK_DEPTH; i++) {
    if (i >= n)
      break;
    __u64 a = frames[i];
    for (__u32 r = 0; r < LW_COST_MAX_RANGES; r++) {
      if (r >= lw_cost_trap_range_count)
        break;
      if (a >= lw_cost_trap_ranges[r][0] && a < lw_cost_trap_ranges[r][1])
        return 1;
    }
  }
  return 0;
}

SEC("perf_event")
int lw_cost_sample(struct bpf_perf_event_data *ctx)
{
  if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
    return 0;
  struct task_struct *task = bpf_get_current_task_btf();
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
  __sync_fetch_and_add(&lw_cost_samples, 1);
  __u64 ip = PT_REGS_IP_CORE(regs);
  /* Interrupted in the kernel (a kernel address: the context's registers are the
   * interrupted ones, the task's the user ones saved at its entry): in a trap? */
  if ((long)PT_REGS_IP(&ctx->regs) < 0 && in_trap(ctx))
    ip |= LW_COST_IN_TRAP;
  __u64 *n = bpf_map_lookup_elem(&lw_cost_ips, &ip);
  if (n) {
    __sync_fetch_and_add(n, 1);
    return 0;
  }
  __u64 one = 1;
  if (bpf_map_update_elem(&lw_cost_ips, &ip, &one, BPF_NOEXIST)) {
    n = bpf_map_lookup_elem(&lw_cost_ips, &ip); /* another CPU added it meanwhile */
    if (n)
      __sync_fetch_and_add(n, 1);
    else
      __sync_fetch_and_add(&lw_cost_dropped, 1);
  }
  return 0;
}
