/* The sampled paths: what an allocation function does when its countdown runs out (see
 * "How the hook sees the program's caller" in preload_internal.h).
 *
 *   exported wrapper (no frame)  --jmp-->  lw_sampled_X (frame: the program's rbp and
 *                                          return address)
 *                                            decide (lw_unsampled); real function;
 *                                            sampled: remember the block, hook_alloc
 *
 * Built with frame pointers, like every function that calls a hook.  The decision is taken
 * before the call, as the BPF program takes it at the entry probe, so a failed allocation
 * also consumes its bytes from the countdown (the same stream of sizes either way).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "preload/preload_internal.h"

/* A sampled allocation succeeded: remember the block, count it, call the hook.  Inlined, so
 * the hook is called from the lw_sampled_* function's own frame. */
LW_ALWAYS_INLINE void lw_sampled_alloc(void* p, size_t size) {
  lw_set_insert(p, size); /* a full window is counted in set_overflow */
  LW_STAT_ADD(hook_allocs, 1);
  LW_STAT_ADD(sampled_bytes, size);
  leakwatch_hook_alloc(p, size);
}

void* lw_sampled_malloc(size_t n) {
  if (lw_unsampled(n))
    return lw_real.malloc(n);
  void* p = lw_real.malloc(n);
  if (LW_LIKELY(p != NULL))
    lw_sampled_alloc(p, n);
  return p;
}

void* lw_sampled_calloc(size_t n, size_t m) {
  size_t total = n * m; /* the wrapper ruled out overflow */
  if (lw_unsampled(total))
    return lw_real.calloc(n, m);
  void* p = lw_real.calloc(n, m);
  if (LW_LIKELY(p != NULL))
    lw_sampled_alloc(p, total);
  return p;
}

/* Takes `old` out of the sampled set before a realloc (the block may be released by it);
 * returns 1 and its size when it was sampled. */
static int lw_release_for_realloc(void* old, uint64_t* size) {
  if (!lw_set_take(old, size))
    return 0;
  LW_STAT_ADD(hook_frees, 1);
  leakwatch_hook_free(old);
  return 1;
}

/* realloc of a real block (old != NULL, not an arena block) whose countdown ran out or whose
 * old block may be sampled.
 *   old sampled:  hook_free(old) first (the block may be released and its address reused
 *                 by another thread before realloc returns); on failure with n > 0 the old
 *                 block is intact and is put back with hook_alloc(old, old_size).
 *   new block:    its own sampling decision on n, like a malloc of n bytes. */
void* lw_sampled_realloc(void* old, size_t n) {
  uint64_t old_size = 0;
  int old_sampled = 0;
  if (lw_maybe_sampled(old))
    old_sampled = lw_release_for_realloc(old, &old_size);
  int sampled = !lw_unsampled(n);
  if (!old_sampled && !sampled)
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

int lw_sampled_posix_memalign(void** out, size_t align, size_t n) {
  if (lw_unsampled(n))
    return lw_real.posix_memalign(out, align, n);
  int rc = lw_real.posix_memalign(out, align, n);
  if (rc == 0 && *out != NULL)
    lw_sampled_alloc(*out, n);
  return rc;
}

/* aligned_alloc, memalign: (alignment, size). */
#define LW_SAMPLED_ALIGNED(name)                           \
  void* lw_sampled_##name(size_t align, size_t n) {        \
    if (lw_unsampled(n))                                   \
      return lw_real.name(align, n);                       \
    void* p = lw_real.name(align, n);                      \
    if (LW_LIKELY(p != NULL))                              \
      lw_sampled_alloc(p, n);                              \
    return p;                                              \
  }
LW_SAMPLED_ALIGNED(aligned_alloc)
LW_SAMPLED_ALIGNED(memalign)

/* valloc, pvalloc: (size); the size is the request (pvalloc rounds it up to a page, but the
 * decision, like BPF's, uses the argument). */
#define LW_SAMPLED_PAGE(name)                              \
  void* lw_sampled_##name(size_t n) {                      \
    if (lw_unsampled(n))                                   \
      return lw_real.name(n);                              \
    void* p = lw_real.name(n);                             \
    if (LW_LIKELY(p != NULL))                              \
      lw_sampled_alloc(p, n);                              \
    return p;                                              \
  }
LW_SAMPLED_PAGE(valloc)
LW_SAMPLED_PAGE(pvalloc)

/* operator new, plain forms: malloc. */
void* lw_sampled_new(int form, size_t n, const void* tag) {
  int sampled = !lw_unsampled(n);
  void* p = lw_real.malloc(n);
  if (LW_UNLIKELY(p == NULL))
    return lw_new_failed(form, n, 0, tag);
  if (sampled)
    lw_sampled_alloc(p, n);
  return p;
}

/* operator new, aligned forms: posix_memalign (accepts any power of two >= sizeof(void*)). */
void* lw_sampled_new_aligned(int form, size_t n, size_t align, const void* tag) {
  size_t a = align < sizeof(void*) ? sizeof(void*) : align;
  int sampled = !lw_unsampled(n);
  void* p = NULL;
  if (LW_UNLIKELY(lw_real.posix_memalign(&p, a, n) != 0 || p == NULL))
    return lw_new_failed(form, n, align, tag);
  if (sampled)
    lw_sampled_alloc(p, n);
  return p;
}

void* lw_realloc_from_arena(void* old, size_t n) {
  if (n == 0)
    return NULL; /* glibc: realloc(p, 0) frees p; arena blocks need no free */
  size_t old_n = lw_arena_block_size(old);
  void* p = malloc(n);
  if (p != NULL)
    memcpy(p, old, old_n < n ? old_n : n);
  return p;
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
