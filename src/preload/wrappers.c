/* The C allocation functions.  Each wrapper is
 *
 *   unsampled (almost always):  countdown -= size; tail call of the real function
 *   sampled:                    real function; remember the block; leakwatch_hook_alloc
 *
 * and free is one filter load before the real free (preload_internal.h).  The sampling
 * decision is taken before the call, as the BPF program takes it at the entry probe, so a
 * failed allocation also consumes its bytes from the countdown (the same stream of sizes
 * either way).
 *
 * The hook is called from the exported function's own frame (lw_sampled_alloc is always
 * inlined, the file is built with frame pointers), which puts the wrapper's caller right
 * after the hook in a frame-pointer stack walk.  The definitions take their prototypes
 * from the system headers, so a mismatch is a compile error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "preload/preload_internal.h"

void lw_remember(void* p, size_t size) {
  lw_set_insert(p, size); /* a full window is counted in set_overflow */
  LW_STAT_ADD(hook_allocs, 1);
  LW_STAT_ADD(sampled_bytes, size);
}

void lw_free_slow(void* p) {
  if (p == NULL || lw_in_arena(p))
    return; /* arena blocks are never given back */
  uint64_t size;
  if (lw_set_take(p, &size)) {
    LW_STAT_ADD(hook_frees, 1);
    leakwatch_hook_free(p);
  }
  lw_real.free(p);
}

/* Takes `old` out of the sampled set before a realloc (the block may be released by it);
 * returns 1 and its size when it was sampled. */
static __attribute__((noinline)) int lw_release_for_realloc(void* old, uint64_t* size) {
  if (!lw_set_take(old, size))
    return 0;
  LW_STAT_ADD(hook_frees, 1);
  leakwatch_hook_free(old);
  return 1;
}

/* realloc of a block served by the bootstrap arena: copy it into a real block. */
static __attribute__((noinline)) void* lw_realloc_from_arena(void* old, size_t n) {
  if (n == 0)
    return NULL; /* glibc: realloc(p, 0) frees p; arena blocks need no free */
  size_t old_n = lw_arena_block_size(old);
  void* p = malloc(n);
  if (p != NULL)
    memcpy(p, old, old_n < n ? old_n : n);
  return p;
}

LW_EXPORT void* malloc(size_t n) {
  if (LW_LIKELY(lw_unsampled(n)))
    return lw_real.malloc(n);
  void* p = lw_real.malloc(n);
  if (LW_LIKELY(p != NULL))
    lw_sampled_alloc(p, n);
  return p;
}

LW_EXPORT void free(void* p) { lw_free(p); }

LW_EXPORT void* calloc(size_t n, size_t m) {
  size_t total;
  if (LW_UNLIKELY(__builtin_mul_overflow(n, m, &total)))
    return lw_real.calloc(n, m); /* fails with ENOMEM; not an allocation (as in BPF) */
  if (LW_LIKELY(lw_unsampled(total)))
    return lw_real.calloc(n, m);
  void* p = lw_real.calloc(n, m);
  if (LW_LIKELY(p != NULL))
    lw_sampled_alloc(p, total);
  return p;
}

/* realloc's body, inlined into realloc and reallocarray so the hook sees their frame.
 *   old sampled:  hook_free(old) first (the block may be released and its address reused
 *                 by another thread before realloc returns); on failure with n > 0 the old
 *                 block is intact and is put back with hook_alloc(old, old_size).
 *   new block:    its own sampling decision on n, like a malloc of n bytes. */
LW_ALWAYS_INLINE void* lw_realloc_body(void* old, size_t n) {
  if (old == NULL) {
    if (LW_LIKELY(lw_unsampled(n)))
      return lw_real.malloc(n);
    void* p = lw_real.malloc(n);
    if (LW_LIKELY(p != NULL))
      lw_sampled_alloc(p, n);
    return p;
  }
  if (LW_UNLIKELY(lw_in_arena(old)))
    return lw_realloc_from_arena(old, n);
  uint64_t old_size = 0;
  int old_sampled = 0;
  if (LW_UNLIKELY(lw_maybe_sampled(old)))
    old_sampled = lw_release_for_realloc(old, &old_size);
  int sampled = !lw_unsampled(n);
  if (LW_LIKELY(!old_sampled && !sampled))
    return lw_real.realloc(old, n);
  void* p = lw_real.realloc(old, n);
  if (LW_UNLIKELY(p == NULL)) {
    if (old_sampled && n != 0) {
      /* Failed: `old` is still allocated. */
      LW_STAT_ADD(realloc_restores, 1);
      lw_sampled_alloc(old, old_size);
    }
    return NULL;
  }
  if (sampled)
    lw_sampled_alloc(p, n);
  return p;
}

LW_EXPORT void* realloc(void* old, size_t n) { return lw_realloc_body(old, n); }

LW_EXPORT void* reallocarray(void* old, size_t n, size_t m) {
  size_t total;
  if (LW_UNLIKELY(__builtin_mul_overflow(n, m, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  return lw_realloc_body(old, total);
}

LW_EXPORT int posix_memalign(void** out, size_t align, size_t n) {
  if (LW_LIKELY(lw_unsampled(n)))
    return lw_real.posix_memalign(out, align, n);
  int rc = lw_real.posix_memalign(out, align, n);
  if (rc == 0 && *out != NULL)
    lw_sampled_alloc(*out, n);
  return rc;
}

/* aligned_alloc, memalign: (alignment, size). */
#define LW_ALIGNED_WRAPPER(name)                  \
  LW_EXPORT void* name(size_t align, size_t n) {  \
    if (LW_LIKELY(lw_unsampled(n)))               \
      return lw_real.name(align, n);              \
    void* p = lw_real.name(align, n);             \
    if (LW_LIKELY(p != NULL))                     \
      lw_sampled_alloc(p, n);                     \
    return p;                                     \
  }
LW_ALIGNED_WRAPPER(aligned_alloc)
LW_ALIGNED_WRAPPER(memalign)

/* valloc, pvalloc: (size); the size is the request (pvalloc rounds it up to a page, but the
 * decision, like BPF's, uses the argument). */
#define LW_PAGE_WRAPPER(name)             \
  LW_EXPORT void* name(size_t n) {        \
    if (LW_LIKELY(lw_unsampled(n)))       \
      return lw_real.name(n);             \
    void* p = lw_real.name(n);            \
    if (LW_LIKELY(p != NULL))             \
      lw_sampled_alloc(p, n);             \
    return p;                             \
  }
LW_PAGE_WRAPPER(valloc)
LW_PAGE_WRAPPER(pvalloc)

/* Hidden aliases: the library's own definitions, whatever the dynamic linker binds the
 * names to. */
#define LW_SELF_ALIAS(name) \
  extern __typeof(name) lw_self_##name __attribute__((alias(#name), copy(name), visibility("hidden")));
LW_SELF_ALIAS(malloc)
LW_SELF_ALIAS(free)
LW_SELF_ALIAS(calloc)
LW_SELF_ALIAS(realloc)
LW_SELF_ALIAS(posix_memalign)
LW_SELF_ALIAS(aligned_alloc)
LW_SELF_ALIAS(memalign)
LW_SELF_ALIAS(valloc)
LW_SELF_ALIAS(pvalloc)

const struct lw_real_fns lw_self = {
    .malloc = lw_self_malloc,
    .free = lw_self_free,
    .calloc = lw_self_calloc,
    .realloc = lw_self_realloc,
    .posix_memalign = lw_self_posix_memalign,
    .aligned_alloc = lw_self_aligned_alloc,
    .memalign = lw_self_memalign,
    .valloc = lw_self_valloc,
    .pvalloc = lw_self_pvalloc,
};
