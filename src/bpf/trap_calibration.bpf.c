// SPDX-License-Identifier: GPL-2.0
/* Trap-cost calibration: the smallest programs a uprobe and a uretprobe can run, so that
 * the time a probed call takes beyond an unprobed one is the kernel's trap (the programs'
 * own run time, from kernel.bpf_stats, is reported apart and subtracted).
 * See probe/trap_calibration.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("uprobe")
int lw_cal_entry(void *ctx)
{
  return 0;
}

SEC("uretprobe")
int lw_cal_return(void *ctx)
{
  return 0;
}
