/* What the two allocation tracers (memleak.bpf.c: uprobes, kmemleak.bpf.c: kmem
 * tracepoints) share: the sampling settings user space writes into rodata, the per-CPU
 * counters and byte-sampler state, the -t event ring, and the sampling decision.
 *
 * Include after vmlinux.h and the libbpf headers, with LW_COUNTERS_MAX defined as the size
 * of the including program's counter enum. */
#ifndef LEAKWATCH_BPF_ALLOC_SAMPLING_BPF_H
#define LEAKWATCH_BPF_ALLOC_SAMPLING_BPF_H

#include "bpf/sampling_table.h"

#ifndef LW_COUNTERS_MAX
#error "define LW_COUNTERS_MAX before including alloc_sampling.bpf.h"
#endif

/* sample_mode (user space: probe::SampleMode) */
#define LW_SAMPLE_EXACT 0
#define LW_SAMPLE_CALLS 1
#define LW_SAMPLE_BYTES 2

const volatile __u64 min_size = 0;
const volatile __u64 max_size = ~0ULL;
const volatile __u32 sample_mode = LW_SAMPLE_EXACT;
const volatile __u64 sample_rate = 1;
const volatile __u32 exp_table[LW_EXP_TABLE_SIZE] = {};
const volatile __u32 trace_events = 0;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, LW_COUNTERS_MAX);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/* Per-CPU byte countdown for byte sampling: bytes left until the next sample point. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct lw_byte_sampler);
} countdown SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4096);
} events SEC(".maps");

static __always_inline void count(__u32 idx)
{
  __u64 *v = bpf_map_lookup_elem(&counters, &idx);
  if (v)
    *v += 1;
}

static __always_inline bool sample_decision(__u64 size)
{
  if (size < min_size || size > max_size)
    return false;
  if (sample_mode == LW_SAMPLE_EXACT)
    return true;
  if (sample_mode == LW_SAMPLE_CALLS)
    return sample_rate <= 1 || bpf_get_prandom_u32() % sample_rate == 0;
  /* Bytes: a Poisson process over allocated bytes (see bpf/sampling_table.h). */
  __u32 zero = 0;
  struct lw_byte_sampler *st = bpf_map_lookup_elem(&countdown, &zero);
  if (!st)
    return false;
  return lw_sample_bytes(st, size, sample_rate, exp_table, bpf_get_prandom_u32());
}

#endif /* LEAKWATCH_BPF_ALLOC_SAMPLING_BPF_H */
