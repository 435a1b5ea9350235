/* The sampled paths of the allocator API wrappers (api_wrappers.c), built with frame
 * pointers like sampled.c: the same decisions, set and hooks, with the allocator's own
 * function called instead of lw_real's. */
#define _GNU_SOURCE
#include "preload/api_internal.h"

LW_ALWAYS_INLINE void lw_api_sampled_alloc(void* p, size_t size) {
  lw_set_insert(p, size);
  LW_STAT_ADD(hook_allocs, 1);
  LW_STAT_ADD(sampled_bytes, size);
  leakwatch_hook_alloc(p, size);
}

void* lw_sampled_api_a(void* (*fn)(size_t), size_t n) {
  int sampled = !lw_unsampled(n);
  void* p = fn(n);
  if (sampled && p != NULL)
    lw_api_sampled_alloc(p, n);
  return p;
}

void* lw_sampled_api_at(void* (*fn)(size_t, const void*), size_t n, const void* tag) {
  int sampled = !lw_unsampled(n);
  void* p = fn(n, tag);
  if (sampled && p != NULL)
    lw_api_sampled_alloc(p, n);
  return p;
}

void* lw_sampled_api_2(void* (*fn)(size_t, size_t), size_t a, size_t b, size_t size) {
  int sampled = !lw_unsampled(size);
  void* p = fn(a, b);
  if (sampled && p != NULL)
    lw_api_sampled_alloc(p, size);
  return p;
}

int lw_sampled_api_p(int (*fn)(void**, size_t, size_t), void** out, size_t align, size_t n) {
  int sampled = !lw_unsampled(n);
  int rc = fn(out, align, n);
  if (sampled && rc == 0 && *out != NULL)
    lw_api_sampled_alloc(*out, n);
  return rc;
}

void* lw_sampled_api_ai(void* (*fn)(size_t, int), size_t n, int flags) {
  int sampled = !lw_unsampled(n);
  void* p = fn(n, flags);
  if (sampled && p != NULL)
    lw_api_sampled_alloc(p, n);
  return p;
}

/* Takes `old` out of the set before the allocator may release it (as lw_sampled_realloc). */
static int lw_api_release(void* old, uint64_t* size) {
  if (old == NULL || !lw_maybe_sampled(old) || !lw_set_take(old, size))
    return 0;
  LW_STAT_ADD(hook_frees, 1);
  leakwatch_hook_free(old);
  return 1;
}

void* lw_sampled_api_r(void* (*fn)(void*, size_t), void* old, size_t n) {
  uint64_t old_size = 0;
  int old_sampled = lw_api_release(old, &old_size);
  int sampled = !lw_unsampled(n);
  void* p = fn(old, n);
  if (p == NULL) {
    if (old_sampled && n != 0) {
      LW_STAT_ADD(realloc_restores, 1);
      lw_api_sampled_alloc(old, old_size);
    }
    return NULL;
  }
  if (sampled)
    lw_api_sampled_alloc(p, n);
  return p;
}

void* lw_sampled_api_ri(void* (*fn)(void*, size_t, int), void* old, size_t n, int flags) {
  uint64_t old_size = 0;
  int old_sampled = lw_api_release(old, &old_size);
  int sampled = !lw_unsampled(n);
  void* p = fn(old, n, flags);
  if (p == NULL) {
    if (old_sampled) {
      LW_STAT_ADD(realloc_restores, 1);
      lw_api_sampled_alloc(old, old_size);
    }
    return NULL;
  }
  if (sampled)
    lw_api_sampled_alloc(p, n);
  return p;
}

void lw_api_forget(void* p) {
  uint64_t size;
  if (lw_set_take(p, &size)) {
    LW_STAT_ADD(hook_frees, 1);
    leakwatch_hook_free(p);
  }
}
