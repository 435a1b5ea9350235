/* Fault-heavy microbenchmark for `leakwatch growth`: the worst case for a page-fault tracer.
 *
 *   bench_growth_faults [ROUNDS] [MIB]
 *
 * Each round maps MIB MiB of fresh anonymous memory, writes one byte to every page (one
 * first-touch page fault per page) and unmaps it again; THP is disabled for the region
 * (MADV_NOHUGEPAGE) so every fault is a 4 KiB page whatever the system setting.  The clock
 * starts after the start signal (bench_start.h) and one warm-up round.  Prints one line:
 *   faults=F total_ns=T cpu_ns=C ns_per_fault=X cpu_ns_per_fault=Y
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_start.h"

static uint64_t touch_round(size_t bytes, size_t page)
{
  char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  madvise(p, bytes, MADV_NOHUGEPAGE);
  uint64_t n = 0;
  for (size_t off = 0; off < bytes; off += page) {
    p[off] = (char)off;
    n++;
  }
  munmap(p, bytes);
  return n;
}

int main(int argc, char **argv)
{
  bench_block_start_signal();
  int rounds = argc > 1 ? atoi(argv[1]) : 20;
  size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 64;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t bytes = mib << 20;

  bench_wait_start();
  touch_round(bytes, page); /* warm-up: page tables, allocator of the kernel */
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  uint64_t faults = 0;
  for (int r = 0; r < rounds; r++) faults += touch_round(bytes, page);
  uint64_t t1 = bench_now_ns(), c1 = bench_cpu_ns();
  printf("faults=%llu total_ns=%llu cpu_ns=%llu ns_per_fault=%.1f cpu_ns_per_fault=%.1f\n",
         (unsigned long long)faults, (unsigned long long)(t1 - t0),
         (unsigned long long)(c1 - c0), (double)(t1 - t0) / (double)faults,
         (double)(c1 - c0) / (double)faults);
  return 0;
}
