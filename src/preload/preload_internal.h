/* Internals shared by the files of libleakwatch-preload.so (not installed, not an ABI).
 *
 * Files:
 *   hooks.c          the two probed hook functions and the exported counters
 *   init.c           finding the real allocator, the bootstrap arena, configuration, fork
 *   sampler.c        the per-thread byte countdown's slow path (draws, seeding)
 *   sampled_set.c    the lock-free set of sampled addresses and its counting filter
 *   wrappers.c       malloc, free, calloc, realloc, ... (the C allocation functions): their
 *                    unsampled paths, built without frame pointers
 *   cxx_operators.c  every operator new / delete form: likewise
 *   sampled.c        the sampled paths of both, built with frame pointers: the functions
 *                    that call leakwatch_hook_alloc
 *   inject.c         loaded into a running process by leakwatch: leakwatch_inject_init,
 *                    the allocator it resolves, the dlopen wrapper
 *   got.c            rewriting the GOT slots of the allocation functions in loaded objects
 *   api_wrappers.c   jemalloc/tcmalloc/mimalloc APIs and malloc_usable_size (injected only:
 *                    hidden, reached through rewritten GOT slots), unsampled paths
 *   api_sampled.c    their sampled paths (frame pointers)
 *
 * How the hook sees the program's caller.  An exported wrapper takes its unsampled path in a
 * few instructions and without a frame of its own.  Otherwise it leaves by a tail jump to
 * its lw_sampled_* function, so that function's frame record holds the program's rbp and
 * the return address into the program, exactly as if the program had called it; it calls
 * the hook from that frame.  A frame-pointer walk at the hook then starts in the caller of
 * malloc/new.  (The unit test PreloadLayout.SampledPathsAreReachedByTailJumps checks the
 * jumps in the built library.)
 *
 * Thread-safety: every function here may be called from any thread at any time, including
 * from a signal handler that interrupted another wrapper on the same thread.  Nothing on a
 * wrapper's path takes a lock or allocates.
 */
#ifndef LEAKWATCH_PRELOAD_INTERNAL_H
#define LEAKWATCH_PRELOAD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/preload_abi.h"
#include "bpf/sampling_table.h"

#define LW_EXPORT __attribute__((visibility("default")))
#define LW_HIDDEN __attribute__((visibility("hidden")))
#define LW_LIKELY(x) __builtin_expect(!!(x), 1)
#define LW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LW_ALWAYS_INLINE static inline __attribute__((always_inline))

/* ---- the real allocator ---- */

/* Where the wrappers forward to.  Until initialisation has resolved the next definitions in
 * the search order (dlsym RTLD_NEXT), every pointer points to a bootstrap function in init.c
 * that initialises, or serves the request from the static arena while initialisation is in
 * progress (dlsym may allocate).  The pointers are replaced once, atomically. */
struct lw_real_fns {
  void* (*malloc)(size_t);
  void (*free)(void*);
  void* (*calloc)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  int (*posix_memalign)(void**, size_t, size_t);
  void* (*aligned_alloc)(size_t, size_t);
  void* (*memalign)(size_t, size_t);
  void* (*valloc)(size_t);
  void* (*pvalloc)(size_t);
};
extern struct lw_real_fns lw_real LW_HIDDEN;
/* The library's own definitions (hidden aliases, immune to interposition), to recognise
 * when dlsym(RTLD_DEFAULT) finds someone else's. */
extern const struct lw_real_fns lw_self LW_HIDDEN;

/* Resolves the real functions on first use; 1 when lw_real holds them, 0 while another
 * call (dlsym's own allocations, or another thread) is initialising. */
int lw_ensure_init(void) LW_HIDDEN;

/* The bootstrap arena: a static bump allocator used only while the real functions are being
 * resolved.  Its blocks are never freed (free ignores them) and realloc copies them out. */
#define LW_ARENA_SIZE (256u * 1024u)
extern char lw_arena[LW_ARENA_SIZE] LW_HIDDEN;

LW_ALWAYS_INLINE int lw_in_arena(const void* p) {
  return (uintptr_t)p - (uintptr_t)lw_arena < LW_ARENA_SIZE;
}
/* The requested size of an arena block (for realloc). */
size_t lw_arena_block_size(const void* p) LW_HIDDEN;

/* glibc's own entry points: the fallback when a lookup finds nothing (it always finds glibc's
 * in a dynamically linked glibc program; these keep a broken search order from crashing). */
extern void* __libc_malloc(size_t);
extern void __libc_free(void*);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void* __libc_valloc(size_t);
extern void* __libc_pvalloc(size_t);
/* posix_memalign on __libc_memalign (init.c). */
int lw_libc_posix_memalign(void** out, size_t align, size_t n) LW_HIDDEN;

/* ---- injection (inject.c, got.c) ---- */

/* Set by the constructor when the library was dlopen'ed into a running process rather than
 * preloaded: the environment is not read, leakwatch_inject_init configures it. */
extern int lw_injected LW_HIDDEN;
/* The handle of the program's global scope (dlopen(NULL)): lookups there see what the
 * program binds to and never this library when it is injected. */
void* lw_global_scope(void) LW_HIDDEN;
/* Stores the real functions (atomically, field by field) and marks initialisation done. */
void lw_install_real(const struct lw_real_fns* real) LW_HIDDEN;
/* Applies leakwatch's configuration; 0 when sampling is on. */
int lw_configure_injected(const struct leakwatch_inject_config* cfg) LW_HIDDEN;

/* A function the GOT rewriting knows: `wrapper` is what a slot of `name` is made to lead to;
 * `real` holds the definition such a slot must lead to before (NULL: a C++ runtime's
 * operator, checked by the object that defines it). */
struct lw_got_name {
  const char* name;
  void* wrapper;
  void** real;
};
/* The names of each family, with their counts (wrappers.c, cxx_operators.c, api_wrappers.c). */
extern const struct lw_got_name lw_c_names[] LW_HIDDEN;
extern void* lw_expect_reallocarray LW_HIDDEN;
extern void* lw_expect_cfree LW_HIDDEN;
extern const unsigned lw_c_name_count LW_HIDDEN;
extern const struct lw_got_name lw_cxx_names[] LW_HIDDEN;
extern const unsigned lw_cxx_name_count LW_HIDDEN;
extern const struct lw_got_name lw_api_names[] LW_HIDDEN;
extern const unsigned lw_api_name_count LW_HIDDEN;
/* The real definitions of the API names (NULL where the program has none). */
void lw_resolve_api_names(void) LW_HIDDEN;

/* One rewriting pass over every loaded object (serialised).  `res` may be NULL. */
void lw_got_pass(struct leakwatch_inject_result* res, const struct lw_got_name* extra,
                 unsigned extra_count) LW_HIDDEN;

/* Forgets a block that an allocator API releases (free path of api_wrappers.c). */
void lw_api_forget(void* p) LW_HIDDEN __attribute__((noinline));

/* ---- configuration (init.c) ---- */

enum lw_mode {
  LW_MODE_UNCONFIGURED = 0, /* environment not read yet: nothing is sampled */
  LW_MODE_BYTES = 1,        /* Poisson byte sampling with mean interval lw_rate */
  LW_MODE_EXACT = 2,        /* every allocation is sampled (LEAKWATCH_SAMPLE_BYTES=1) */
  LW_MODE_OFF = 3,          /* disabled, or no sampled set: pass-through */
};
extern int lw_mode LW_HIDDEN;                 /* enum lw_mode; written once, release */
/* Initialises and reads the configuration if the environment is available yet (it is
 * once libc's initialiser has run); returns the mode. */
int lw_try_configure(void) LW_HIDDEN;
extern uint64_t lw_rate LW_HIDDEN;            /* R */
/* Sampling calls (LEAKWATCH_SAMPLE_CALLS): every call counts as this many bytes, whatever
 * its size, and R is set so that a call holds a sample point with probability 1/N; 0 when
 * sampling bytes. */
extern uint64_t lw_call_unit LW_HIDDEN;
extern uint32_t lw_exp_table[LW_EXP_TABLE_SIZE] LW_HIDDEN;
extern uint64_t lw_seed_base LW_HIDDEN;       /* mixed into every thread's seed */
extern uint64_t lw_thread_counter LW_HIDDEN;  /* threads seeded so far (atomic) */

extern struct leakwatch_preload_stats leakwatch_preload_stats;
#define LW_STAT_ADD(field, n) \
  __atomic_fetch_add(&leakwatch_preload_stats.field, (n), __ATOMIC_RELAXED)

/* splitmix64's finaliser: a cheap bijective 64-bit mix. */
LW_ALWAYS_INLINE uint64_t lw_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* ---- the per-thread sampler (sampler.c) ---- */

struct lw_thread {
  struct lw_byte_sampler sampler; /* countdown and armed, as in BPF (sampling_table.h) */
  uint64_t rng;                   /* splitmix64 state */
  uint32_t seeded;
  uint32_t in_init;               /* this thread is running initialisation */
};
extern __thread struct lw_thread lw_tls LW_HIDDEN __attribute__((tls_model("initial-exec")));

/* The decision when the countdown would reach zero, or before configuration: the exact
 * lw_sample_bytes() of the BPF program on this thread's state.  1 = sampled. */
int lw_sample_slow(size_t size) LW_HIDDEN __attribute__((noinline));

/* 1 when the countdown stays positive after `size` bytes: the allocation is not sampled and
 * its bytes are charged.  This is the whole per-allocation cost of sampling: a TLS load, a
 * subtraction, a store.  0: nothing was changed, and lw_sample_slow() must decide (it
 * charges, tests and redraws), so calling lw_charge() again first is harmless. */
LW_ALWAYS_INLINE int lw_charge(size_t size) {
  struct lw_byte_sampler* st = &lw_tls.sampler;
  if (LW_UNLIKELY(lw_call_unit != 0))
    size = lw_call_unit;
  /* Compared unsigned: a request of 2^63 bytes or more (malloc(SIZE_MAX - k), bound to fail)
   * must not turn into a negative size that pushes the next sample point away. */
  long long left = st->countdown;
  if (LW_LIKELY(left > 0 && size < (unsigned long long)left)) {
    st->countdown = left - (long long)size;
    return 1;
  }
  return 0;
}

/* The whole decision: 1 when this allocation of `size` bytes is not sampled. */
LW_ALWAYS_INLINE int lw_unsampled(size_t size) {
  return lw_charge(size) || !lw_sample_slow(size);
}

/* Child side of fork: re-seed this (the only) thread and draw a fresh gap. */
void lw_sampler_after_fork(void) LW_HIDDEN;

/* ---- the sampled set (sampled_set.c) ---- */

#define LW_FILTER_BITS 16
extern uint8_t lw_filter[1u << LW_FILTER_BITS] LW_HIDDEN;

/* Index in the counting filter: the top bits of a Fibonacci hash of the address. */
LW_ALWAYS_INLINE uint32_t lw_filter_index(uintptr_t a) {
  return (uint32_t)((a * 0x9E3779B97F4A7C15ull) >> (64 - LW_FILTER_BITS));
}
/* 0 when `p` is certainly not a sampled block (the common case: one byte load). */
LW_ALWAYS_INLINE int lw_maybe_sampled(const void* p) {
  return __atomic_load_n(&lw_filter[lw_filter_index((uintptr_t)p)], __ATOMIC_RELAXED) != 0;
}

/* Maps the set (capacity a power of two).  0 on success. */
int lw_set_init(uint64_t capacity) LW_HIDDEN;
/* Marks `p`'s filter counter for good, so that free(p) leaves the fast path (bootstrap arena
 * blocks: free must not hand them to the real allocator). */
void lw_filter_pin(const void* p) LW_HIDDEN;
/* Remembers a sampled block; 0 when its probe window is full (counted in set_overflow). */
int lw_set_insert(void* p, uint64_t size) LW_HIDDEN;
/* Forgets `p` if it was sampled: returns 1 and its size, else 0. */
int lw_set_take(void* p, uint64_t* size) LW_HIDDEN;

/* ---- the sampled paths (sampled.c) ----
 *
 * Each is entered by a tail jump from its exported wrapper when lw_charge() failed (or, for
 * realloc, when the old block may be sampled), with the wrapper's arguments; it takes the
 * sampling decision itself (lw_unsampled) and, for a sampled allocation, calls
 * leakwatch_hook_alloc from its own frame.  A wrapper must never `call` them. */
void* lw_sampled_malloc(size_t n) LW_HIDDEN __attribute__((noinline));
void* lw_sampled_calloc(size_t n, size_t m) LW_HIDDEN __attribute__((noinline));
void* lw_sampled_realloc(void* old, size_t n) LW_HIDDEN __attribute__((noinline));
int lw_sampled_posix_memalign(void** out, size_t align, size_t n) LW_HIDDEN
    __attribute__((noinline));
void* lw_sampled_aligned_alloc(size_t align, size_t n) LW_HIDDEN __attribute__((noinline));
void* lw_sampled_memalign(size_t align, size_t n) LW_HIDDEN __attribute__((noinline));
void* lw_sampled_valloc(size_t n) LW_HIDDEN __attribute__((noinline));
void* lw_sampled_pvalloc(size_t n) LW_HIDDEN __attribute__((noinline));
/* operator new of any form (enum lw_new_form in cxx_operators.c); align 0 for the plain
 * forms, tag is the nothrow tag or NULL. */
void* lw_sampled_new(int form, size_t n, const void* tag) LW_HIDDEN __attribute__((noinline));
void* lw_sampled_new_aligned(int form, size_t n, size_t align, const void* tag) LW_HIDDEN
    __attribute__((noinline));
/* operator new failed: the C++ runtime's semantics (new_handler, bad_alloc, nothrow NULL). */
void* lw_new_failed(int form, size_t n, size_t align, const void* tag) LW_HIDDEN
    __attribute__((noinline));

/* realloc of a bootstrap arena block: copies it into a real block. */
void* lw_realloc_from_arena(void* old, size_t n) LW_HIDDEN __attribute__((noinline));

/* free() of a pointer the filter did not rule out (or an arena block). */
void lw_free_slow(void* p) LW_HIDDEN __attribute__((noinline));

/* The whole of free(): one filter load, then the real free.  Arena blocks are pinned in the
 * filter (lw_filter_pin), so they always take the slow path. */
LW_ALWAYS_INLINE void lw_free(void* p) {
  if (LW_LIKELY(!lw_maybe_sampled(p))) {
    lw_real.free(p);
    return;
  }
  lw_free_slow(p);
}

#endif /* LEAKWATCH_PRELOAD_INTERNAL_H */
