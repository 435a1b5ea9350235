/* Records written by task_iter.bpf.c (a BPF task iterator: layer 1 of the agent) and read by
 * src/metrics/task_iter.  Fixed-width fields only; user space static_asserts the sizes.
 * Plain C: included by clang -target bpf and g++.
 *
 * One read of the iterator's file walks every task of the system once:
 *
 *   task (thread-group leader, has an mm)  ──> lw_ti_process  identity, memory counters,
 *                                              faults and CPU of the leader + exited threads
 *   task (other thread of a process)        ──> lw_ti_thread   its own faults and CPU
 *   kernel thread                           ──> nothing
 *
 * User space adds the thread records to their process, which gives the whole-process fault
 * and CPU figures /proc/PID/stat shows.  Records are written back to back; each starts with
 * its kind (a __u32), which fixes its size.
 */
#ifndef LEAKWATCH_BPF_TASK_ITER_H
#define LEAKWATCH_BPF_TASK_ITER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LW_TI_COMM_LEN 16

/* The mm counters of struct mm_struct's rss_stat[], in the kernel's order (enum in
 * include/linux/mm_types_task.h, stable since 4.19). */
enum lw_ti_member {
  LW_TI_FILEPAGES = 0,
  LW_TI_ANONPAGES = 1,
  LW_TI_SWAPENTS = 2,
  LW_TI_SHMEMPAGES = 3,
  LW_TI_MEMBERS = 4,
};

/* Upper bound on the CPUs whose per-CPU counter parts are summed (a rodata knob gives the
 * machine's count; more CPUs than this falls back to the approximate counts). */
#define LW_TI_MAX_CPUS 1024

enum lw_ti_kind {
  LW_TI_KIND_PROCESS = 1,
  LW_TI_KIND_THREAD = 2,
};

struct lw_ti_process {
  __u32 kind;                  /* LW_TI_KIND_PROCESS */
  __u32 tgid;                  /* in the initial pid namespace */
  __u32 ppid;                  /* tgid of the real parent */
  __u32 nr_threads;            /* signal->nr_threads */
  __u64 start_boottime_ns;     /* task->start_boottime: /proc/PID/stat field 22 in ns */
  __u64 cgroup_id;             /* cgroup v2 id: the inode number of its cgroup directory */
  /* Pages per mm counter (enum lw_ti_member).  `pages_sum`: the counter's global count
   * plus every CPU's unfolded part (percpu_counter_sum); `pages_count`: the global count
   * alone (percpu_counter_read), off by at most batch x CPUs pages.  pages_sum equals
   * pages_count when the rodata knob sum_percpu is 0. */
  __s64 pages_sum[LW_TI_MEMBERS];
  __s64 pages_count[LW_TI_MEMBERS];
  __u64 total_vm;              /* pages mapped (VmSize) */
  __u64 min_flt;               /* the leader's and exited threads' (signal->min_flt) */
  __u64 maj_flt;
  __u64 cpu_ns;                /* the leader's and exited threads' sum_exec_runtime */
  char comm[LW_TI_COMM_LEN];   /* the leader's comm, NUL-terminated */
};

struct lw_ti_thread {
  __u32 kind;                  /* LW_TI_KIND_THREAD */
  __u32 tgid;
  __u64 min_flt;
  __u64 maj_flt;
  __u64 cpu_ns;
};

#endif
