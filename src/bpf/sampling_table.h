/* Byte sampling shared by the BPF programs and user space (plain C: both sides include it).
 *
 * leakwatch's byte sampler takes each allocated byte with probability 1/R: the sample points
 * form a Poisson process over the stream of allocated bytes with mean interval R.  An
 * allocation of size s is sampled when at least one point falls inside it, which happens
 * with p(s) = 1 - exp(-s/R); it then carries weight 1/p(s) (src/analysis/sampling.h).
 *
 * BPF has no floating point, so the exponential gaps come from a table in rodata:
 *
 *   table[i] = round(2^LW_EXP_TABLE_SHIFT * -ln(1 - (i + 0.5) / LW_EXP_TABLE_SIZE))
 *
 * i.e. the mid-quantiles of Exp(1) in fixed point (user space builds it with
 * leakwatch::analysis::exponential_table() and writes it into the skeleton's rodata before
 * load).  A gap in bytes is ceil(R * table[rand & (SIZE - 1)] / 2^SHIFT); rounding up makes
 * "countdown <= 0" mean "a point fell at or before the allocation's last byte", which is
 * exactly p(s) = 1 - exp(-s/R) for integer s (rounding down would add one byte to every
 * allocation: +6% for 16-byte ones).  The smallest entry is 32 (2^16 * 0.5/1024), so a gap
 * is at least 1 byte for any R >= 1.  R * table[i] must fit in 64 bits: the largest entry is
 * ~2^19, so R may go up to 2^44 bytes.
 *
 * Per-CPU state, one lw_byte_sampler per CPU (a BPF_MAP_TYPE_PERCPU_ARRAY of one entry):
 *
 *   allocation of size s on this CPU
 *        |
 *        v
 *   armed? --no--> countdown = fresh gap; armed = 1
 *        |
 *        v
 *   countdown -= s;  countdown > 0 ?  --yes--> not sampled
 *        | no
 *        v
 *   sampled; countdown = fresh gap
 *
 * Why one fresh gap is enough even when s spans several sample points: the allocation is
 * sampled iff the first point lands inside it, and with an exponential countdown
 * P(first point <= s) = 1 - exp(-s/R) whatever happens after it.  How many further points
 * fall in the rest of the allocation does not change the decision, and by memorylessness
 * the distance from the allocation's end to the next point is again Exp(R), independent of
 * everything before, so restarting with a fresh draw leaves the process exactly Poisson
 * (no need to loop over the points inside a large allocation as tcmalloc does).  For the
 * same reason an unsampled allocation leaves countdown - s, still Exp(R) given it is > 0.
 * Disjoint allocations therefore get independent inclusions, which is what the
 * Horvitz-Thompson variance in src/analysis/sampling.h assumes.  The table only
 * approximates Exp(1): its mean is 0.99966, which makes the realised inclusion
 * probability 0.034% higher than p(s) (measured; negligible next to the interval).
 *
 * "armed" exists because a per-CPU array starts zeroed: without it the first allocation on
 * every CPU would be sampled and weighted 1/p(s), an error of about R bytes per CPU.
 *
 * The counters are per CPU and not atomic: BPF programs on one CPU do not interleave here
 * (uprobes run in process context with migration disabled), and a rare lost update only
 * perturbs one gap, which keeps the estimate unbiased.
 */
#ifndef LEAKWATCH_BPF_SAMPLING_TABLE_H
#define LEAKWATCH_BPF_SAMPLING_TABLE_H

/* Number of table entries; a power of two so "rand & (SIZE - 1)" picks one uniformly and the
 * verifier sees a bounded index. */
#define LW_EXP_TABLE_SIZE 1024
/* Fractional bits of each entry. */
#define LW_EXP_TABLE_SHIFT 16

struct lw_byte_sampler {
  long long countdown;  /* bytes until the next sample point */
  unsigned int armed;   /* 0 until the first gap has been drawn on this CPU */
  unsigned int pad;
};

/* A fresh gap in bytes for mean interval `rate`, from a 32-bit random number. */
static inline unsigned long long lw_exp_gap(unsigned long long rate,
                                            const volatile unsigned int* table,
                                            unsigned int rnd) {
  unsigned long long t = table[rnd & (LW_EXP_TABLE_SIZE - 1)];
  return (rate * t + ((1ULL << LW_EXP_TABLE_SHIFT) - 1)) >> LW_EXP_TABLE_SHIFT;
}

/* Advances the countdown by one allocation of `size` bytes; returns 1 when it is sampled.
 * `rnd` is consumed only when a gap is drawn (pass bpf_get_prandom_u32()). */
static inline int lw_sample_bytes(struct lw_byte_sampler* st, unsigned long long size,
                                  unsigned long long rate, const volatile unsigned int* table,
                                  unsigned int rnd) {
  if (!st->armed) {
    st->countdown = (long long)lw_exp_gap(rate, table, rnd);
    st->armed = 1;
    /* The low bits picked this gap; the high bits are independent of them and pick the
     * next one, so two consecutive gaps are not the same entry. */
    rnd >>= 16;
  }
  /* A request of 2^62 bytes or more (one that will fail) reaches any sample point: it must
   * not wrap into a negative size that moves the next one away. */
  if (size >= (1ULL << 62)) {
    st->countdown = (long long)lw_exp_gap(rate, table, rnd);
    return 1;
  }
  st->countdown -= (long long)size;
  if (st->countdown > 0) return 0;
  st->countdown = (long long)lw_exp_gap(rate, table, rnd);
  return 1;
}

#endif /* LEAKWATCH_BPF_SAMPLING_TABLE_H */
