/* The per-thread byte sampler: the slow path of lw_unsampled() (preload_internal.h).
 *
 * The decision is the BPF program's, on per-thread instead of per-CPU state: the same
 * struct lw_byte_sampler, the same lw_sample_bytes() and the same table
 * (bpf/sampling_table.h), so an allocation of s bytes is sampled with p(s) = 1 - exp(-s/R)
 * exactly as in attach mode, and the weights computed from s and R are the same.  The fast
 * path only subtracts; whenever the countdown would not stay positive it leaves the state
 * untouched and comes here, where lw_sample_bytes() subtracts again, tests and redraws.
 *
 * Random numbers: splitmix64 per thread, seeded from the process seed (AT_RANDOM, or
 * LEAKWATCH_PRELOAD_SEED) and a thread counter, so threads draw independent streams without
 * any system call or lock.  32 bits per decision, as bpf_get_prandom_u32() gives BPF.
 */
#include <limits.h>

#include "preload/preload_internal.h"

__thread struct lw_thread lw_tls __attribute__((tls_model("initial-exec")));

static uint32_t lw_next_random(struct lw_thread* t) {
  if (LW_UNLIKELY(!t->seeded)) {
    uint64_t n = __atomic_fetch_add(&lw_thread_counter, 1, __ATOMIC_RELAXED);
    t->rng = lw_mix64(lw_seed_base + (n + 1) * 0x9E3779B97F4A7C15ull);
    t->seeded = 1;
  }
  t->rng += 0x9E3779B97F4A7C15ull;
  return (uint32_t)(lw_mix64(t->rng) >> 32);
}

int lw_sample_slow(size_t size) {
  struct lw_thread* t = &lw_tls;
  int mode = __atomic_load_n(&lw_mode, __ATOMIC_ACQUIRE);
  if (LW_UNLIKELY(mode == LW_MODE_UNCONFIGURED))
    mode = lw_try_configure(); /* e.g. libstdc++'s initialiser, before our constructor */
  switch (mode) {
    case LW_MODE_BYTES:
      /* (size is already the call unit unless configuration happened just now) */
      return lw_sample_bytes(&t->sampler, lw_call_unit ? lw_call_unit : size, lw_rate,
                             lw_exp_table, lw_next_random(t));
    case LW_MODE_EXACT:
      /* The countdown stays at 0, so every allocation comes here. */
      t->sampler.countdown = 0;
      return 1;
    case LW_MODE_OFF:
      /* Never come back: 2^62 bytes is beyond any process's lifetime allocation. */
      t->sampler.countdown = LLONG_MAX / 2;
      t->sampler.armed = 1;
      return 0;
    default:
      /* Not configurable yet (before libc's initialiser, or from inside initialisation, see
       * init.c): not sampled, and the countdown stays unarmed so the first allocation after
       * configuration draws a gap. */
      LW_STAT_ADD(unsampled_early, 1);
      return 0;
  }
}

void lw_sampler_after_fork(void) {
  /* Replacing the residual countdown by a fresh Exp(R) draw at a point that does not depend
   * on the future keeps the process Poisson (memorylessness), and parent and child no longer
   * share their next sample points. */
  lw_tls.seeded = 0;
  lw_tls.sampler.armed = 0;
  lw_tls.sampler.countdown = 0;
}
