/* Tight malloc+free loop: the cost of tracing one allocation pair.
 *
 *   bench_alloc_loop fixed N [SIZE]   N pairs of malloc(SIZE) (default 64) + free
 *   bench_alloc_loop mixed N          N pairs over a fixed-seed mix of sizes 16 B..8 KiB,
 *                                     freeing the oldest of 64 live blocks (FIFO), so the
 *                                     allocator is not only recycling one tcache slot
 *
 * Prints one line: "ns_per_pair=X cpu_ns_per_pair=Y pairs=N total_ns=T cpu_ns=C": wall time
 * (CLOCK_MONOTONIC) and process CPU time around the timed loop only.  Before timing: a warm-up of the same loop before the start signal (heap pages
 * faulted in, tcache/bins filled) and a short one after it (the first uprobe hit in a process
 * sets up its out-of-line area).  See bench_start.h for the start signal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_start.h"

#define LIVE 64
#define N_SIZES 4096

/* Keeps the compiler from pairing malloc with free and deleting both (GCC does at -O2). */
static inline void escape(void *p)
{
  __asm__ volatile("" : : "r"(p) : "memory");
}

static void loop_fixed(uint64_t n, size_t size)
{
  for (uint64_t i = 0; i < n; i++) {
    char *p = malloc(size);
    p[0] = (char)i;
    escape(p);
    free(p);
  }
}

static size_t sizes[N_SIZES];
static void *live[LIVE];

/* Mostly small sizes, a tail up to 8 KiB: roughly the shape of a C++ program's requests. */
static void init_sizes(void)
{
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < N_SIZES; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    unsigned bucket = (unsigned)(x % 100);
    size_t base = bucket < 60 ? 16 : bucket < 85 ? 128 : bucket < 97 ? 1024 : 4096;
    sizes[i] = base + (size_t)((x >> 32) % base);
  }
}

static void loop_mixed(uint64_t n, uint64_t *cursor)
{
  uint64_t c = *cursor;
  for (uint64_t i = 0; i < n; i++, c++) {
    unsigned slot = (unsigned)(c % LIVE);
    free(live[slot]); /* free(NULL) on the first round: glibc returns at once */
    char *p = malloc(sizes[c % N_SIZES]);
    p[0] = (char)c;
    escape(p);
    live[slot] = p;
  }
  *cursor = c;
}

int main(int argc, char **argv)
{
  bench_block_start_signal();
  if (argc < 3 || (strcmp(argv[1], "fixed") && strcmp(argv[1], "mixed"))) {
    fprintf(stderr, "usage: %s fixed|mixed N [SIZE]\n", argv[0]);
    return 1;
  }
  int mixed = strcmp(argv[1], "mixed") == 0;
  uint64_t n = strtoull(argv[2], NULL, 10);
  size_t size = argc > 3 ? strtoull(argv[3], NULL, 10) : 64;
  if (n == 0 || size == 0) {
    fprintf(stderr, "N and SIZE must be positive\n");
    return 1;
  }
  uint64_t cursor = 0;
  init_sizes();
  uint64_t warm = n / 10 < 20000 ? 20000 : n / 10;

  if (mixed)
    loop_mixed(warm, &cursor);
  else
    loop_fixed(warm, size);
  bench_wait_start();
  if (mixed)
    loop_mixed(2000, &cursor);
  else
    loop_fixed(2000, size);

  uint64_t c0 = bench_cpu_ns();
  uint64_t t0 = bench_now_ns();
  if (mixed)
    loop_mixed(n, &cursor);
  else
    loop_fixed(n, size);
  uint64_t t1 = bench_now_ns();
  uint64_t c1 = bench_cpu_ns();

  for (int i = 0; i < LIVE; i++)
    free(live[i]);
  printf("ns_per_pair=%.1f cpu_ns_per_pair=%.1f pairs=%llu total_ns=%llu cpu_ns=%llu\n",
         (double)(t1 - t0) / (double)n, (double)(c1 - c0) / (double)n, (unsigned long long)n,
         (unsigned long long)(t1 - t0), (unsigned long long)(c1 - c0));
  return 0;
}
