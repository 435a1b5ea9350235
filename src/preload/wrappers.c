/* The C allocation functions.  Each wrapper is
 *
 *   unsampled (almost always):  countdown -= size; tail call of the real function
 *   otherwise:                  tail jump to its lw_sampled_* function (sampled.c), which
 *                               decides, allocates and calls the hook
 *
 * and free is one filter load before the real free (preload_internal.h).  Built without
 * frame pointers: nothing here calls a hook, and the unsampled path is then a handful of
 * instructions.  The definitions take their prototypes from the system headers, so a
 * mismatch is a compile error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "preload/preload_internal.h"

LW_EXPORT void* malloc(size_t n) {
  if (LW_LIKELY(lw_charge(n)))
    return lw_real.malloc(n);
  return lw_sampled_malloc(n);
}

LW_EXPORT void free(void* p) { lw_free(p); }

LW_EXPORT void* calloc(size_t n, size_t m) {
  size_t total;
  if (LW_UNLIKELY(__builtin_mul_overflow(n, m, &total)))
    return lw_real.calloc(n, m); /* fails with ENOMEM; not an allocation (as in BPF) */
  if (LW_LIKELY(lw_charge(total)))
    return lw_real.calloc(n, m);
  return lw_sampled_calloc(n, m);
}

/* realloc's body, inlined into realloc and reallocarray. */
LW_ALWAYS_INLINE void* lw_realloc_body(void* old, size_t n) {
  if (old == NULL) {
    if (LW_LIKELY(lw_charge(n)))
      return lw_real.malloc(n);
    return lw_sampled_malloc(n);
  }
  if (LW_UNLIKELY(lw_in_arena(old)))
    return lw_realloc_from_arena(old, n);
  if (LW_LIKELY(!lw_maybe_sampled(old) && lw_charge(n)))
    return lw_real.realloc(old, n);
  return lw_sampled_realloc(old, n);
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
  if (LW_LIKELY(lw_charge(n)))
    return lw_real.posix_memalign(out, align, n);
  return lw_sampled_posix_memalign(out, align, n);
}

/* aligned_alloc, memalign: (alignment, size). */
#define LW_ALIGNED_WRAPPER(name)                  \
  LW_EXPORT void* name(size_t align, size_t n) {  \
    if (LW_LIKELY(lw_charge(n)))                  \
      return lw_real.name(align, n);              \
    return lw_sampled_##name(align, n);           \
  }
LW_ALIGNED_WRAPPER(aligned_alloc)
LW_ALIGNED_WRAPPER(memalign)

/* valloc, pvalloc: (size). */
#define LW_PAGE_WRAPPER(name)             \
  LW_EXPORT void* name(size_t n) {        \
    if (LW_LIKELY(lw_charge(n)))          \
      return lw_real.name(n);             \
    return lw_sampled_##name(n);          \
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
LW_SELF_ALIAS(reallocarray)
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

/* The GOT rewriting's C names (injection): each wrapper forwards to lw_real's field, which
 * holds the definition the program binds to.  reallocarray and cfree are served by realloc
 * and free; their slots must lead to their own definitions (inject.c resolves them). */
void* lw_expect_reallocarray;
void* lw_expect_cfree;
const struct lw_got_name lw_c_names[] = {
    {"malloc", (void*)lw_self_malloc, (void**)&lw_real.malloc},
    {"free", (void*)lw_self_free, (void**)&lw_real.free},
    {"cfree", (void*)lw_self_free, &lw_expect_cfree},
    {"calloc", (void*)lw_self_calloc, (void**)&lw_real.calloc},
    {"realloc", (void*)lw_self_realloc, (void**)&lw_real.realloc},
    {"reallocarray", (void*)lw_self_reallocarray, &lw_expect_reallocarray},
    {"posix_memalign", (void*)lw_self_posix_memalign, (void**)&lw_real.posix_memalign},
    {"aligned_alloc", (void*)lw_self_aligned_alloc, (void**)&lw_real.aligned_alloc},
    {"memalign", (void*)lw_self_memalign, (void**)&lw_real.memalign},
    {"valloc", (void*)lw_self_valloc, (void**)&lw_real.valloc},
    {"pvalloc", (void*)lw_self_pvalloc, (void**)&lw_real.pvalloc},
};
const unsigned lw_c_name_count = sizeof(lw_c_names) / sizeof(lw_c_names[0]);
