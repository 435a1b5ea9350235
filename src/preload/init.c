/* Start-up: finding the real allocator, the bootstrap arena, reading the configuration, fork.
 *
 * Order of events in a process started with LD_PRELOAD=libleakwatch-preload.so:
 *
 *   ld.so relocates everything, then may already call malloc (ours: we are first in the
 *   search order)          -> lw_real.malloc is lw_boot_malloc -> lw_ensure_init():
 *                             dlsym(RTLD_NEXT) for each function; allocations made meanwhile
 *                             (by dlsym, or other threads) come from the static arena
 *   libc's initialiser runs (environ is set), then other libraries' initialisers (e.g.
 *   libstdc++'s, which allocates)
 *                          -> the first sampling decision after that reads the environment
 *                             (lw_try_configure): table, sampled set; sampling on
 *   our constructor         -> the same if nothing allocated before; pthread_atfork
 *   main ...
 *
 * Until the configuration is read nothing is sampled (counted in unsampled_early): environ
 * is not set before libc's initialiser.  Blocks allocated in that window, or before the
 * library existed, are simply unknown to the sampled set: their free and realloc go
 * straight to the real functions.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "preload/exp_table.h"
#include "preload/preload_internal.h"

int lw_mode = LW_MODE_UNCONFIGURED;
uint64_t lw_rate = LEAKWATCH_PRELOAD_DEFAULT_SAMPLE_BYTES;
uint64_t lw_call_unit;
uint32_t lw_exp_table[LW_EXP_TABLE_SIZE];
uint64_t lw_seed_base;
uint64_t lw_thread_counter;

/* ---- bootstrap arena ---- */

char lw_arena[LW_ARENA_SIZE] __attribute__((aligned(4096)));
static size_t lw_arena_used;

static void* lw_arena_alloc(size_t n, size_t align) {
  if (align < 16)
    align = 16;
  uintptr_t base = (uintptr_t)lw_arena;
  size_t cur = __atomic_load_n(&lw_arena_used, __ATOMIC_RELAXED);
  for (;;) {
    /* 16 bytes of header before the block; its last 8 hold the size. */
    uintptr_t start = (base + cur + 16 + align - 1) & ~(uintptr_t)(align - 1);
    size_t off = start - base;
    if (off > LW_ARENA_SIZE || n > LW_ARENA_SIZE - off) {
      LW_STAT_ADD(bootstrap_failures, 1);
      errno = ENOMEM;
      return NULL;
    }
    if (__atomic_compare_exchange_n(&lw_arena_used, &cur, off + n, 1, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED)) {
      ((size_t*)start)[-1] = n;
      lw_filter_pin((void*)start); /* its free must not reach the real free */
      LW_STAT_ADD(bootstrap_allocs, 1);
      return (void*)start; /* zeroed: the arena is .bss and never reused */
    }
  }
}

size_t lw_arena_block_size(const void* p) { return ((const size_t*)p)[-1]; }

/* ---- bootstrap functions: lw_real's initial values ---- */

static void* lw_boot_malloc(size_t n) {
  if (lw_ensure_init())
    return lw_real.malloc(n);
  return lw_arena_alloc(n, 16);
}

static void lw_boot_free(void* p) {
  if (lw_ensure_init()) {
    lw_real.free(p);
    return;
  }
  /* Only reachable while initialising, for a block that is not ours to release yet:
   * leaking it is the safe choice. */
  if (p != NULL)
    LW_STAT_ADD(early_frees_dropped, 1);
}

static void* lw_boot_calloc(size_t n, size_t m) {
  if (lw_ensure_init())
    return lw_real.calloc(n, m);
  size_t total;
  if (__builtin_mul_overflow(n, m, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return lw_arena_alloc(total, 16);
}

static void* lw_boot_realloc(void* old, size_t n) {
  if (lw_ensure_init())
    return lw_real.realloc(old, n);
  if (old == NULL)
    return lw_arena_alloc(n, 16);
  /* A real block (arena blocks never get here) while initialisation runs elsewhere: wait
   * for it.  The initialising thread itself cannot own such a block yet. */
  if (lw_tls.in_init) {
    errno = ENOMEM;
    return NULL;
  }
  while (!lw_ensure_init())
    sched_yield();
  return lw_real.realloc(old, n);
}

static int lw_valid_alignment(size_t align) {
  return align != 0 && (align & (align - 1)) == 0;
}

static int lw_boot_posix_memalign(void** out, size_t align, size_t n) {
  if (lw_ensure_init())
    return lw_real.posix_memalign(out, align, n);
  if (!lw_valid_alignment(align) || align % sizeof(void*) != 0)
    return EINVAL;
  void* p = lw_arena_alloc(n, align);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

static void* lw_boot_aligned_alloc(size_t align, size_t n) {
  if (lw_ensure_init())
    return lw_real.aligned_alloc(align, n);
  if (!lw_valid_alignment(align)) {
    errno = EINVAL;
    return NULL;
  }
  return lw_arena_alloc(n, align);
}

static void* lw_boot_memalign(size_t align, size_t n) {
  if (lw_ensure_init())
    return lw_real.memalign(align, n);
  if (!lw_valid_alignment(align)) {
    errno = EINVAL;
    return NULL;
  }
  return lw_arena_alloc(n, align);
}

static void* lw_boot_valloc(size_t n) {
  if (lw_ensure_init())
    return lw_real.valloc(n);
  return lw_arena_alloc(n, 4096);
}

static void* lw_boot_pvalloc(size_t n) {
  if (lw_ensure_init())
    return lw_real.pvalloc(n);
  return lw_arena_alloc((n + 4095) & ~(size_t)4095, 4096);
}

struct lw_real_fns lw_real = {
    .malloc = lw_boot_malloc,
    .free = lw_boot_free,
    .calloc = lw_boot_calloc,
    .realloc = lw_boot_realloc,
    .posix_memalign = lw_boot_posix_memalign,
    .aligned_alloc = lw_boot_aligned_alloc,
    .memalign = lw_boot_memalign,
    .valloc = lw_boot_valloc,
    .pvalloc = lw_boot_pvalloc,
};

/* Fallbacks for the aligned functions when only glibc's internal names are available. */
int lw_libc_posix_memalign(void** out, size_t align, size_t n) {
  if (!lw_valid_alignment(align) || align % sizeof(void*) != 0)
    return EINVAL;
  void* p = __libc_memalign(align, n);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

/* ---- resolution ---- */

static uint32_t lw_resolve_flags;

/* The definition the program's other calls would reach if we were not there: normally the
 * next one after us (RTLD_NEXT).  If something earlier in the search order (the executable,
 * an earlier preload) defines the name, the program's calls go there and never reach our
 * wrappers; ours then forward there too, so every path uses one allocator. */
static void* lw_resolve(const char* name, void* self, void* fallback) {
  void* first = dlsym(RTLD_DEFAULT, name);
  if (first != NULL && first != self) {
    lw_resolve_flags |= LW_PRELOAD_F_SHADOWED;
    return first;
  }
  void* next = dlsym(RTLD_NEXT, name);
  return next != NULL ? next : fallback;
}

#define LW_RESOLVE(field, fallback) \
  resolved.field = (__typeof(resolved.field))lw_resolve(#field, (void*)lw_self.field, (void*)(fallback))

static void lw_resolve_all(void) {
  struct lw_real_fns resolved;
  LW_RESOLVE(malloc, __libc_malloc);
  LW_RESOLVE(free, __libc_free);
  LW_RESOLVE(calloc, __libc_calloc);
  LW_RESOLVE(realloc, __libc_realloc);
  LW_RESOLVE(posix_memalign, lw_libc_posix_memalign);
  LW_RESOLVE(aligned_alloc, __libc_memalign);
  LW_RESOLVE(memalign, __libc_memalign);
  LW_RESOLVE(valloc, __libc_valloc);
  LW_RESOLVE(pvalloc, __libc_pvalloc);
  /* Field by field, each an atomic pointer store: a thread may mix bootstrap and real
   * functions for a moment, which is fine (a bootstrap function forwards once ready). */
  void** dst = (void**)&lw_real;
  void** src = (void**)&resolved;
  for (size_t i = 0; i < sizeof(resolved) / sizeof(void*); ++i)
    __atomic_store_n(&dst[i], src[i], __ATOMIC_RELEASE);
}

enum { LW_INIT_NONE = 0, LW_INIT_RUNNING = 1, LW_INIT_DONE = 2 };
static int lw_init_state;

void lw_install_real(const struct lw_real_fns* real) {
  void** dst = (void**)&lw_real;
  void* const* src = (void* const*)real;
  for (size_t i = 0; i < sizeof(*real) / sizeof(void*); ++i)
    __atomic_store_n(&dst[i], src[i], __ATOMIC_RELEASE);
  __atomic_store_n(&lw_init_state, LW_INIT_DONE, __ATOMIC_RELEASE);
}
static int lw_config_state;

static void lw_configure(void);

int lw_ensure_init(void) {
  int s = __atomic_load_n(&lw_init_state, __ATOMIC_ACQUIRE);
  if (LW_LIKELY(s == LW_INIT_DONE))
    return 1;
  if (s == LW_INIT_NONE &&
      __atomic_compare_exchange_n(&lw_init_state, &s, LW_INIT_RUNNING, 0, __ATOMIC_ACQ_REL,
                                  __ATOMIC_ACQUIRE)) {
    lw_tls.in_init = 1;
    /* Tests only: a failing dlsym allocates (its error message), as the successful ones of
     * older glibc did (calloc in dlerror's set-up); this exercises the bootstrap arena. */
    const char* probe = environ != NULL ? getenv("LEAKWATCH_PRELOAD_TEST_DLSYM") : NULL;
    if (probe != NULL && *probe != '\0') {
      (void)dlsym(RTLD_NEXT, probe);
      (void)dlerror(); /* leave no pending error for the program (frees an arena block) */
    }
    lw_resolve_all();
    __atomic_store_n(&lw_init_state, LW_INIT_DONE, __ATOMIC_RELEASE);
    lw_tls.in_init = 0;
    if (environ != NULL)
      lw_configure();
    return 1;
  }
  return s == LW_INIT_DONE;
}

/* ---- configuration ---- */

/* Decimal with an optional K, M or G suffix (powers of 1024).  0 when malformed. */
static uint64_t lw_parse_size(const char* s) {
  uint64_t v = 0;
  if (s == NULL || *s < '0' || *s > '9')
    return 0;
  for (; *s >= '0' && *s <= '9'; ++s) {
    if (v > (UINT64_MAX - 9) / 10)
      return 0;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  unsigned shift = 0;
  switch (*s) {
    case 'k': case 'K': shift = 10; ++s; break;
    case 'm': case 'M': shift = 20; ++s; break;
    case 'g': case 'G': shift = 30; ++s; break;
    default: break;
  }
  if (*s != '\0' || (shift && v > (UINT64_MAX >> shift)))
    return 0;
  return v << shift;
}

static uint64_t lw_process_seed(void) {
  uint64_t seed = 0;
  const unsigned char* r = (const unsigned char*)getauxval(AT_RANDOM);
  if (r != NULL)
    memcpy(&seed, r + 8, sizeof(seed)); /* glibc uses the first 8 for the stack guard */
  return lw_mix64(seed ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)&seed);
}

/* A size from the environment: `fallback` when unset, or when out of [lo, hi] (or not a power
 * of two where one is wanted), which also sets the configuration-error flag. */
static uint64_t lw_env_size(const char* name, uint64_t fallback, uint64_t lo, uint64_t hi,
                            int power_of_two, uint32_t* flags) {
  const char* text = getenv(name);
  if (text == NULL)
    return fallback;
  uint64_t v = lw_parse_size(text);
  if (v >= lo && v <= hi && (!power_of_two || (v & (v - 1)) == 0))
    return v;
  *flags |= LW_PRELOAD_F_CONFIG_ERROR;
  return fallback;
}

/* -ln(1 - x) for 0 < x <= 1/2, by its series (no libm in the library): sum x^k / k. */
static double lw_neg_log1m(double x) {
  double sum = 0, term = x;
  for (int k = 1; k < 200 && term > 1e-18 * sum; k++, term *= x)
    sum += term / k;
  return sum;
}

/* The settings, from the environment (LD_PRELOAD) or from leakwatch (injection). */
struct lw_settings {
  int disabled;
  uint64_t rate;   /* R; 1 = exact */
  uint64_t calls;  /* N > 1: call sampling */
  uint64_t slots;  /* 0 = default */
  int fixed_seed;
  uint64_t seed;
};

static void lw_settings_from_env(struct lw_settings* s, uint32_t* flags) {
  const char* disable = getenv("LEAKWATCH_PRELOAD_DISABLE");
  s->disabled = disable != NULL && *disable != '\0' && strcmp(disable, "0") != 0;
  s->rate = lw_env_size("LEAKWATCH_SAMPLE_BYTES", LEAKWATCH_PRELOAD_DEFAULT_SAMPLE_BYTES, 1,
                        1ull << 44, 0, flags);
  s->calls = lw_env_size("LEAKWATCH_SAMPLE_CALLS", 0, 1, 1ull << 28, 0, flags);
  s->slots = lw_env_size("LEAKWATCH_PRELOAD_SET_SLOTS", 0, 1ull << 10, 1ull << 26, 1, flags);
  const char* seed_env = getenv("LEAKWATCH_PRELOAD_SEED");
  s->fixed_seed = seed_env != NULL;
  s->seed = seed_env != NULL ? lw_parse_size(seed_env) : 0;
}

/* Publishes the configuration: from here on allocations are sampled. */
static void lw_apply_settings(const struct lw_settings* s, uint32_t flags) {
  struct leakwatch_preload_stats* st = &leakwatch_preload_stats;
  flags |= lw_resolve_flags;
  int mode = LW_MODE_BYTES;
  if (s->disabled) {
    flags |= LW_PRELOAD_F_DISABLED;
    mode = LW_MODE_OFF;
  }
  uint64_t rate = s->rate;
  /* Sampling calls: a call of U "bytes" holds a point of the byte sampler's Poisson process
   * (mean interval R) with probability 1 - exp(-U/R); R = U / -ln(1 - 1/N) makes that 1/N,
   * the probability BPF gives each call with -s N. */
  uint64_t unit = 0;
  uint64_t calls = s->calls;
  if (calls == 1) {
    rate = 1;
  } else if (calls > 1) {
    unit = 1ull << 16;
    rate = (uint64_t)((double)unit / lw_neg_log1m(1.0 / (double)calls) + 0.5);
    flags |= LW_PRELOAD_F_CALLS;
  }
  if (rate == 1 && mode == LW_MODE_BYTES) {
    mode = LW_MODE_EXACT;
    flags |= LW_PRELOAD_F_EXACT;
  }
  uint64_t slots = s->slots ? s->slots : mode == LW_MODE_EXACT ? (1ull << 22) : (1ull << 18);

  lw_seed_base = s->fixed_seed ? lw_mix64(s->seed + 1) : lw_process_seed();
  lw_preload_build_exp_table(lw_exp_table, LW_EXP_TABLE_SIZE);
  lw_rate = rate;
  lw_call_unit = mode == LW_MODE_BYTES ? unit : 0;

  if (mode != LW_MODE_OFF && lw_set_init(slots) != 0) {
    flags |= LW_PRELOAD_F_NO_SET;
    mode = LW_MODE_OFF;
  }
  if (mode == LW_MODE_BYTES || mode == LW_MODE_EXACT)
    flags |= LW_PRELOAD_F_ACTIVE;

  st->sample_bytes = calls > 1 ? calls : rate;
  st->set_capacity = mode == LW_MODE_OFF ? 0 : slots;
  __atomic_store_n(&st->flags, flags, __ATOMIC_RELAXED);
  __atomic_store_n(&st->magic, LEAKWATCH_PRELOAD_MAGIC, __ATOMIC_RELEASE);
  __atomic_store_n(&lw_mode, mode, __ATOMIC_RELEASE);
  __atomic_store_n(&lw_config_state, 2, __ATOMIC_RELEASE);
}

static void lw_configure(void) {
  int expected = 0;
  if (lw_injected ||
      !__atomic_compare_exchange_n(&lw_config_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return;
  uint32_t flags = 0;
  struct lw_settings s;
  lw_settings_from_env(&s, &flags);
  lw_apply_settings(&s, flags);
}

int lw_configure_injected(const struct leakwatch_inject_config* cfg) {
  int expected = 0;
  if (!__atomic_compare_exchange_n(&lw_config_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return -1;
  struct lw_settings s = {0};
  s.rate = cfg->sample_bytes ? cfg->sample_bytes : LEAKWATCH_PRELOAD_DEFAULT_SAMPLE_BYTES;
  s.calls = cfg->sample_calls;
  s.slots = cfg->set_slots;
  s.fixed_seed = cfg->seed != 0;
  s.seed = cfg->seed;
  /* Calls made while the slots were being rewritten were made before sampling started:
   * they belong to the time before the injection, not to "before initialisation". */
  __atomic_store_n(&leakwatch_preload_stats.unsampled_early, 0, __ATOMIC_RELAXED);
  lw_apply_settings(&s, LW_PRELOAD_F_INJECTED);
  return (__atomic_load_n(&leakwatch_preload_stats.flags, __ATOMIC_RELAXED) & LW_PRELOAD_F_NO_SET)
             ? -1 : 0;
}

int lw_try_configure(void) {
  if (lw_injected) /* configured by leakwatch_inject_init only */
    return __atomic_load_n(&lw_mode, __ATOMIC_ACQUIRE);
  if (lw_ensure_init() && environ != NULL)
    lw_configure();
  return __atomic_load_n(&lw_mode, __ATOMIC_ACQUIRE);
}

static void lw_after_fork_child(void) {
  /* The child is single-threaded here; the other threads' states died with them. */
  lw_seed_base = lw_mix64(lw_seed_base ^ ((uint64_t)getpid() << 32));
  lw_sampler_after_fork();
  LW_STAT_ADD(forks, 1);
}

int lw_injected;

void* lw_global_scope(void) {
  static void* handle;
  void* h = __atomic_load_n(&handle, __ATOMIC_ACQUIRE);
  if (h == NULL) {
    h = dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);
    __atomic_store_n(&handle, h, __ATOMIC_RELEASE);
  }
  return h;
}

/* Loaded at start (LD_PRELOAD) the library is in the global scope; dlopen'ed by leakwatch
 * into a running process (RTLD_LOCAL) it is not.  (dlsym(RTLD_DEFAULT) cannot tell: called
 * from here it also searches the library's own scope.)  Injected, nothing binds to its
 * wrappers until leakwatch_inject_init rewrites the GOT, and the environment, which
 * leakwatch did not set, is not read. */
__attribute__((constructor)) static void lw_preload_constructor(void) {
  void* global = lw_global_scope();
  if (global == NULL ||
      dlsym(global, LEAKWATCH_PRELOAD_STATS_SYMBOL) != (void*)&leakwatch_preload_stats) {
    lw_injected = 1;
    pthread_atfork(NULL, NULL, lw_after_fork_child);
    return;
  }
  lw_ensure_init();
  lw_configure();
  pthread_atfork(NULL, NULL, lw_after_fork_child);
}
