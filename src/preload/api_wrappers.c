/* Allocator APIs besides the C functions: jemalloc (mallocx & co., and the je_-prefixed C
 * functions), tcmalloc (tc_*), mimalloc (mi_*), and malloc_usable_size.  Injection only:
 * these wrappers are hidden (a preloaded library exporting mallocx would make every program
 * look like it had jemalloc) and are reached through GOT slots got.c rewrites, each slot
 * leading to the allocator's own function before.  Unsampled paths, as wrappers.c: built
 * without frame pointers, they tail-jump to their sampled path in api_sampled.c.
 *
 * Shapes (argument lists), one macro each:
 *   A   (n)            malloc-like          AT  (n, tag)          nothrow new
 *   C   (n, m)         calloc-like          M   (align, n)        memalign-like
 *   AR  (n, align)     mi_malloc_aligned    P   (out, align, n)   posix_memalign-like
 *   R   (p, n)         realloc-like         AI  (n, flags)        mallocx
 *   RI  (p, n, flags)  rallocx
 *   F   (p)            free-like            FX  (p, x)            dallocx, tc_free_sized, ...
 *   FXY (p, x, y)      sdallocx, mi_free_size_aligned
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

#include "preload/api_internal.h"

#define LW_API_A(name)                                              \
  static void* (*lw_real_##name)(size_t);                           \
  static void* lw_api_##name(size_t n) {                            \
    if (LW_LIKELY(lw_charge(n)))                                    \
      return lw_real_##name(n);                                     \
    return lw_sampled_api_a(lw_real_##name, n);                     \
  }
#define LW_API_AT(name)                                             \
  static void* (*lw_real_##name)(size_t, const void*);              \
  static void* lw_api_##name(size_t n, const void* tag) {           \
    if (LW_LIKELY(lw_charge(n)))                                    \
      return lw_real_##name(n, tag);                                \
    return lw_sampled_api_at(lw_real_##name, n, tag);               \
  }
#define LW_API_C(name)                                              \
  static void* (*lw_real_##name)(size_t, size_t);                   \
  static void* lw_api_##name(size_t n, size_t m) {                  \
    size_t total;                                                   \
    if (LW_UNLIKELY(__builtin_mul_overflow(n, m, &total)) ||        \
        LW_LIKELY(lw_charge(total)))                                \
      return lw_real_##name(n, m);                                  \
    return lw_sampled_api_2(lw_real_##name, n, m, total);           \
  }
#define LW_API_M(name)                                              \
  static void* (*lw_real_##name)(size_t, size_t);                   \
  static void* lw_api_##name(size_t align, size_t n) {              \
    if (LW_LIKELY(lw_charge(n)))                                    \
      return lw_real_##name(align, n);                              \
    return lw_sampled_api_2(lw_real_##name, align, n, n);           \
  }
#define LW_API_AR(name)                                             \
  static void* (*lw_real_##name)(size_t, size_t);                   \
  static void* lw_api_##name(size_t n, size_t align) {              \
    if (LW_LIKELY(lw_charge(n)))                                    \
      return lw_real_##name(n, align);                              \
    return lw_sampled_api_2(lw_real_##name, n, align, n);           \
  }
#define LW_API_P(name)                                              \
  static int (*lw_real_##name)(void**, size_t, size_t);             \
  static int lw_api_##name(void** out, size_t align, size_t n) {    \
    if (LW_LIKELY(lw_charge(n)))                                    \
      return lw_real_##name(out, align, n);                         \
    return lw_sampled_api_p(lw_real_##name, out, align, n);         \
  }
#define LW_API_R(name)                                              \
  static void* (*lw_real_##name)(void*, size_t);                    \
  static void* lw_api_##name(void* old, size_t n) {                 \
    if (old == NULL) {                                              \
      if (LW_LIKELY(lw_charge(n)))                                  \
        return lw_real_##name(old, n);                              \
    } else if (LW_LIKELY(!lw_maybe_sampled(old) && lw_charge(n))) { \
      return lw_real_##name(old, n);                                \
    }                                                               \
    return lw_sampled_api_r(lw_real_##name, old, n);                \
  }
#define LW_API_AI(name)                                             \
  static void* (*lw_real_##name)(size_t, int);                      \
  static void* lw_api_##name(size_t n, int flags) {                 \
    if (LW_LIKELY(lw_charge(n)))                                    \
      return lw_real_##name(n, flags);                              \
    return lw_sampled_api_ai(lw_real_##name, n, flags);             \
  }
#define LW_API_RI(name)                                             \
  static void* (*lw_real_##name)(void*, size_t, int);               \
  static void* lw_api_##name(void* old, size_t n, int flags) {      \
    if (LW_LIKELY(!lw_maybe_sampled(old) && lw_charge(n)))          \
      return lw_real_##name(old, n, flags);                         \
    return lw_sampled_api_ri(lw_real_##name, old, n, flags);        \
  }
#define LW_API_F(name)                                              \
  static void (*lw_real_##name)(void*);                             \
  static void lw_api_##name(void* p) {                              \
    if (LW_UNLIKELY(lw_maybe_sampled(p)))                           \
      lw_api_forget(p);                                             \
    lw_real_##name(p);                                              \
  }
#define LW_API_FX(name)                                             \
  static void (*lw_real_##name)(void*, size_t);                     \
  static void lw_api_##name(void* p, size_t x) {                    \
    if (LW_UNLIKELY(lw_maybe_sampled(p)))                           \
      lw_api_forget(p);                                             \
    lw_real_##name(p, x);                                           \
  }
#define LW_API_FXY(name)                                            \
  static void (*lw_real_##name)(void*, size_t, size_t);             \
  static void lw_api_##name(void* p, size_t x, size_t y) {          \
    if (LW_UNLIKELY(lw_maybe_sampled(p)))                           \
      lw_api_forget(p);                                             \
    lw_real_##name(p, x, y);                                        \
  }

/* The list: X(shape, name).  (`int` flags are passed in a 64-bit register like size_t, so
 * dallocx(p, int) uses FX and sdallocx(p, size, int) FXY.) */
#define LW_API_LIST(X)                                                                      \
  X(AI, mallocx) X(RI, rallocx) X(FX, dallocx) X(FXY, sdallocx)                             \
  X(A, je_malloc) X(C, je_calloc) X(R, je_realloc) X(F, je_free) X(P, je_posix_memalign)    \
  X(M, je_aligned_alloc) X(M, je_memalign) X(A, je_valloc)                                  \
  X(AI, je_mallocx) X(RI, je_rallocx) X(FX, je_dallocx) X(FXY, je_sdallocx)                 \
  X(A, tc_malloc) X(A, tc_malloc_skip_new_handler) X(C, tc_calloc) X(R, tc_realloc)         \
  X(F, tc_free) X(FX, tc_free_sized) X(M, tc_memalign) X(P, tc_posix_memalign)              \
  X(A, tc_valloc) X(A, tc_pvalloc) X(A, tc_new) X(A, tc_newarray) X(AT, tc_new_nothrow)     \
  X(AT, tc_newarray_nothrow) X(F, tc_delete) X(F, tc_deletearray) X(FX, tc_delete_sized)    \
  X(FX, tc_deletearray_sized) X(FX, tc_delete_nothrow) X(FX, tc_deletearray_nothrow)        \
  X(A, mi_malloc) X(A, mi_zalloc) X(C, mi_calloc) X(C, mi_mallocn) X(R, mi_realloc)         \
  X(F, mi_free) X(FX, mi_free_size) X(FX, mi_free_aligned) X(FXY, mi_free_size_aligned)     \
  X(AR, mi_malloc_aligned) X(AR, mi_zalloc_aligned) X(A, mi_new) X(A, mi_new_nothrow)       \
  X(AR, mi_new_aligned)

#define LW_DEFINE(shape, name) LW_API_##shape(name)
LW_API_LIST(LW_DEFINE)

/* malloc_usable_size: only the bootstrap arena's blocks are the library's own business. */
static size_t (*lw_real_malloc_usable_size)(void*);
static size_t lw_api_malloc_usable_size(void* p) {
  if (LW_UNLIKELY(lw_in_arena(p)))
    return lw_arena_block_size(p);
  return lw_real_malloc_usable_size(p);
}

#define LW_ENTRY(shape, name) {#name, (void*)lw_api_##name, (void**)&lw_real_##name},
const struct lw_got_name lw_api_names[] = {
    LW_API_LIST(LW_ENTRY)
    {"malloc_usable_size", (void*)lw_api_malloc_usable_size, (void**)&lw_real_malloc_usable_size},
};
const unsigned lw_api_name_count = sizeof(lw_api_names) / sizeof(lw_api_names[0]);

/* The definitions the program binds to (the global scope, which does not hold this library); a name the program has no definition of stays NULL and its slots are left alone. */
void lw_resolve_api_names(void) {
  for (unsigned i = 0; i < lw_api_name_count; ++i)
    __atomic_store_n(lw_api_names[i].real, dlsym(lw_global_scope(), lw_api_names[i].name),
                     __ATOMIC_RELEASE);
}
