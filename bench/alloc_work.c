/* malloc+free pairs with some work between them: an allocation-heavy service in miniature
 * (bench/overhead_estimate.sh), where bench_alloc_loop is the extreme of no work at all.
 *
 *   bench_alloc_work N WORK    N pairs of malloc(64) + free, WORK rounds of a xorshift
 *                              between them (~1 ns each)
 *
 * Prints "ns_per_pair=X cpu_ns_per_pair=Y pairs=N" as bench_alloc_loop does, around the
 * timed loop only (after the start signal: see bench_start.h).  With BENCH_BUSY_UNTIL_SIGNAL=1
 * it runs its loop while it waits for the signal, as a service being attached to does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_start.h"

static inline void escape(void *p)
{
  __asm__ volatile("" : : "r"(p) : "memory");
}

static uint64_t state = 0x9e3779b97f4a7c15ull;

static void loop(uint64_t n, uint64_t work)
{
  for (uint64_t i = 0; i < n; i++) {
    char *p = malloc(64);
    uint64_t x = state;
    for (uint64_t w = 0; w < work; w++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    state = x;
    p[0] = (char)x;
    escape(p);
    free(p);
  }
}

int main(int argc, char **argv)
{
  bench_block_start_signal();
  if (argc != 3) {
    fprintf(stderr, "usage: %s N WORK\n", argv[0]);
    return 1;
  }
  uint64_t n = strtoull(argv[1], NULL, 10), work = strtoull(argv[2], NULL, 10);
  if (n == 0) {
    fprintf(stderr, "N must be positive\n");
    return 1;
  }
  loop(20000, work);
  const char *busy = getenv("BENCH_BUSY_UNTIL_SIGNAL");
  if (busy && *busy == '1') {
    /* A service already at work when the tracer comes (its cost guard samples the target
     * before attaching): the loop runs on until the start signal. */
    fprintf(stderr, "ready\n");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    struct timespec now = {0, 0};
    uint64_t deadline = bench_now_ns() + 120000000000ull;
    while (sigtimedwait(&set, NULL, &now) != SIGUSR1) {
      loop(1000, work);
      if (bench_now_ns() > deadline) {
        fprintf(stderr, "no start signal within 120 s\n");
        return 2;
      }
    }
  } else {
    bench_wait_start();
  }
  loop(2000, work);
  uint64_t c0 = bench_cpu_ns(), t0 = bench_now_ns();
  loop(n, work);
  uint64_t t1 = bench_now_ns(), c1 = bench_cpu_ns();
  printf("ns_per_pair=%.1f cpu_ns_per_pair=%.1f pairs=%llu state=%llu\n", (double)(t1 - t0) / (double)n,
         (double)(c1 - c0) / (double)n, (unsigned long long)n, (unsigned long long)(state & 1));
  return 0;
}
