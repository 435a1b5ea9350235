/* The pause a process sees while leakwatch injects the sampling library into it
 * (bench/inject.sh).  T threads spin, each noting the longest gap between two consecutive
 * looks at the clock, while also allocating and freeing (so that some of them are inside
 * malloc when the process is stopped).  stdin commands:
 *   reset    forget the gaps so far                    -> "reset"
 *   report   the longest gap of any thread, in us       -> "max_gap_us N"
 *   quit
 * Usage: bench_inject_pause [THREADS]; prints "ready".  On a shared machine the gaps also
 * hold the scheduler's: inject.sh measures them without an injection too. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile int stop;
static uint64_t max_gap_ns[64];
static volatile int generation;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void* spin(void* arg) {
  int id = (int)(intptr_t)arg;
  uint64_t last = now_ns();
  int gen = generation;
  while (!stop) {
    free(malloc(64 + (last & 255)));
    uint64_t t = now_ns();
    if (gen != generation) {
      gen = generation;
      max_gap_ns[id] = 0;
    } else if (t - last > max_gap_ns[id]) {
      max_gap_ns[id] = t - last;
    }
    last = t;
  }
  return NULL;
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 4;
  if (threads > 64) threads = 64;
  pthread_t t[64];
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, spin, (void*)(intptr_t)i);
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready\n");
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "reset", 5) == 0) {
      generation++;
      printf("reset\n");
    } else if (strncmp(line, "report", 6) == 0) {
      uint64_t m = 0;
      for (int i = 0; i < threads; i++)
        if (max_gap_ns[i] > m) m = max_gap_ns[i];
      printf("max_gap_us %llu\n", (unsigned long long)(m / 1000));
    } else if (strncmp(line, "quit", 4) == 0) {
      break;
    }
  }
  stop = 1;
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  return 0;
}
