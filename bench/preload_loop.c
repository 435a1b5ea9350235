/* What libleakwatch-preload.so adds to a malloc+free pair, without any tracer attached.
 *
 *   bench_preload_loop [ROUNDS [PAIRS]]     (defaults 9 rounds, 20,000,000 pairs)
 *
 * Runs itself as a child in every configuration below, ROUNDS times, interleaved (the
 * order rotates each round, because the machine is shared and noisy), and prints a
 * markdown table of medians:
 *   none        no preload
 *   off         preloaded with LEAKWATCH_PRELOAD_DISABLE=1 (wrappers only pass through)
 *   bytes512k   preloaded, LEAKWATCH_SAMPLE_BYTES=524288 (the default)
 *   bytes64k    preloaded, LEAKWATCH_SAMPLE_BYTES=65536 (8x more samples)
 * for two loops: `fixed` (malloc(64) + free, the allocator's fastest path) and `mixed`
 * (sizes 16 B..8 KiB from a fixed-seed table, 64 live blocks, FIFO frees), and reports
 * "added" = configuration minus none.  Two clocks per child: wall (CLOCK_MONOTONIC) and
 * process CPU time (steadier on a busy machine: waiting for a CPU is not counted).
 * The hooks are not probed here: a sampled pair then costs the hook's call and NOP, once
 * per R bytes on average.  The library is found next to the build's leakwatch binary
 * (../libleakwatch-preload.so from this program), or at $LEAKWATCH_PRELOAD_LIB.
 */
#define _GNU_SOURCE
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LIVE 64
#define N_SIZES 4096

static uint64_t now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Keeps GCC from pairing malloc with free and deleting both. */
static inline void escape(void* p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static size_t sizes[N_SIZES];
static void* live[LIVE];

static void init_sizes(void) {
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

static void loop_fixed(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    char* p = malloc(64);
    p[0] = (char)i;
    escape(p);
    free(p);
  }
}

static void loop_mixed(uint64_t n, uint64_t* cursor) {
  uint64_t c = *cursor;
  for (uint64_t i = 0; i < n; i++, c++) {
    unsigned slot = (unsigned)(c % LIVE);
    free(live[slot]);
    char* p = malloc(sizes[c % N_SIZES]);
    p[0] = (char)c;
    escape(p);
    live[slot] = p;
  }
  *cursor = c;
}

/* Child: one timed run; prints "wall cpu" in ns per pair. */
static int child(const char* loop, uint64_t n) {
  int mixed = strcmp(loop, "mixed") == 0;
  uint64_t cursor = 0;
  init_sizes();
  if (mixed)
    loop_mixed(n / 10, &cursor);
  else
    loop_fixed(n / 10);
  uint64_t c0 = now_ns(CLOCK_PROCESS_CPUTIME_ID), t0 = now_ns(CLOCK_MONOTONIC);
  if (mixed)
    loop_mixed(n, &cursor);
  else
    loop_fixed(n);
  uint64_t t1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < LIVE; i++)
    free(live[i]);
  printf("%.3f %.3f\n", (double)(t1 - t0) / (double)n, (double)(c1 - c0) / (double)n);
  return 0;
}

struct config {
  const char* name;
  int preload;
  const char* env; /* extra NAME=VALUE, or NULL */
};

static const struct config configs[] = {
    {"none", 0, NULL},
    {"off", 1, "LEAKWATCH_PRELOAD_DISABLE=1"},
    {"bytes512k", 1, "LEAKWATCH_SAMPLE_BYTES=524288"},
    {"bytes64k", 1, "LEAKWATCH_SAMPLE_BYTES=65536"},
};
#define N_CONFIGS (int)(sizeof(configs) / sizeof(configs[0]))

static int run_child(const char* self, const char* lib, const struct config* c,
                     const char* loop, uint64_t n, double* wall, double* cpu) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    unsetenv("LD_PRELOAD");
    unsetenv("LEAKWATCH_PRELOAD_DISABLE");
    unsetenv("LEAKWATCH_SAMPLE_BYTES");
    if (c->preload)
      setenv("LD_PRELOAD", lib, 1);
    if (c->env)
      putenv((char*)c->env);
    char count[32];
    snprintf(count, sizeof(count), "%llu", (unsigned long long)n);
    execl(self, self, "--child", loop, count, (char*)NULL);
    _exit(127);
  }
  close(fds[1]);
  char buf[128] = {0};
  ssize_t got = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      sscanf(buf, "%lf %lf", wall, cpu) != 2)
    return -1;
  return 0;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0)
    return child(argv[2], strtoull(argv[3], NULL, 10));
  int rounds = argc > 1 ? atoi(argv[1]) : 9;
  uint64_t pairs = argc > 2 ? strtoull(argv[2], NULL, 10) : 20000000ull;
  if (rounds < 1 || rounds > 99 || pairs == 0) {
    fprintf(stderr, "usage: %s [ROUNDS (1..99) [PAIRS]]\n", argv[0]);
    return 1;
  }
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0)
    return 1;
  self[len] = '\0';
  char lib[PATH_MAX + 64];
  const char* env_lib = getenv("LEAKWATCH_PRELOAD_LIB");
  if (env_lib) {
    snprintf(lib, sizeof(lib), "%s", env_lib);
  } else {
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", self);
    snprintf(lib, sizeof(lib), "%s/../libleakwatch-preload.so", dirname(dir));
  }
  if (access(lib, R_OK) != 0) {
    fprintf(stderr, "%s not found (build target leakwatch_preload, or set LEAKWATCH_PRELOAD_LIB)\n", lib);
    return 1;
  }

  static const char* const loops[] = {"fixed", "mixed"};
  static double wall[2][N_CONFIGS][99], cpu[2][N_CONFIGS][99];
  for (int r = 0; r < rounds; r++)
    for (int l = 0; l < 2; l++)
      for (int k = 0; k < N_CONFIGS; k++) {
        int c = (k + r) % N_CONFIGS;
        if (run_child(self, lib, &configs[c], loops[l], pairs, &wall[l][c][r], &cpu[l][c][r])) {
          fprintf(stderr, "run failed: %s %s\n", loops[l], configs[c].name);
          return 1;
        }
      }

  printf("ns per malloc+free pair, median of %d interleaved rounds of %llu pairs; no tracer\n\n",
         rounds, (unsigned long long)pairs);
  printf("| loop | config | wall | cpu | added wall | added cpu |\n");
  printf("|---|---|---:|---:|---:|---:|\n");
  for (int l = 0; l < 2; l++) {
    double base_wall = median(wall[l][0], rounds), base_cpu = median(cpu[l][0], rounds);
    for (int c = 0; c < N_CONFIGS; c++) {
      double w = median(wall[l][c], rounds), u = median(cpu[l][c], rounds);
      printf("| %s | %s | %.1f | %.1f | %+.1f | %+.1f |\n", loops[l], configs[c].name, w, u,
             w - base_wall, u - base_cpu);
    }
  }
  return 0;
}
