/* Shared by the benchmark programs: wait for the tracer, then time.
 *
 * A tracer attaches some time after the process starts (bpftrace -p, leakwatch -p), and a
 * pair timed before the probes are in place costs nothing, so a program never starts its
 * clock on its own: bench/run.sh sends SIGUSR1 once the tracer has printed that it is
 * attached (or at once when there is no tracer).  The signal is blocked from the start and
 * collected with sigtimedwait, so it cannot be lost when it arrives early.
 *
 * Header-only and C-compatible so both the C loop and the C++ workload use it.
 */
#ifndef LEAKWATCH_BENCH_START_H
#define LEAKWATCH_BENCH_START_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process (all threads, user + system).  Uprobe handling runs in the
 * traced thread's context (the trap, the BPF program, the out-of-line single step), so it is
 * counted here, while time spent waiting for a CPU on a busy machine is not: on a shared VM
 * this is the steadier of the two figures. */
static inline uint64_t bench_cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Call first thing in main(): from here on SIGUSR1 is queued, not delivered. */
static inline void bench_block_start_signal(void)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, NULL);
}

/* Wait for SIGUSR1 when BENCH_WAIT_SIGNAL is set in the environment (run.sh sets it);
 * otherwise return at once, so the program can also be run by hand or under `-c`.
 * Exits with status 2 when no signal comes within 120 s (a broken harness, not a result). */
static inline void bench_wait_start(void)
{
  const char *w = getenv("BENCH_WAIT_SIGNAL");
  if (!w || !*w || *w == '0')
    return;
  fprintf(stderr, "ready\n");
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  struct timespec timeout = {120, 0};
  if (sigtimedwait(&set, NULL, &timeout) != SIGUSR1) {
    fprintf(stderr, "no start signal within 120 s\n");
    exit(2);
  }
}

#endif
