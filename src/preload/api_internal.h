/* The sampled paths of the allocator API wrappers (api_wrappers.c -> api_sampled.c).  Each
 * takes the real function it forwards to; a wrapper reaches it by a tail jump only, so that
 * its frame record holds the program's return address (preload_internal.h). */
#ifndef LEAKWATCH_PRELOAD_API_INTERNAL_H
#define LEAKWATCH_PRELOAD_API_INTERNAL_H

#include "preload/preload_internal.h"

#define LW_SAMPLED_PATH LW_HIDDEN __attribute__((noinline))

void* lw_sampled_api_a(void* (*fn)(size_t), size_t n) LW_SAMPLED_PATH;
void* lw_sampled_api_at(void* (*fn)(size_t, const void*), size_t n, const void* tag) LW_SAMPLED_PATH;
/* Two size_t arguments; `size` is the one sampled (calloc: n * m). */
void* lw_sampled_api_2(void* (*fn)(size_t, size_t), size_t a, size_t b, size_t size) LW_SAMPLED_PATH;
int lw_sampled_api_p(int (*fn)(void**, size_t, size_t), void** out, size_t align, size_t n) LW_SAMPLED_PATH;
void* lw_sampled_api_r(void* (*fn)(void*, size_t), void* old, size_t n) LW_SAMPLED_PATH;
void* lw_sampled_api_ai(void* (*fn)(size_t, int), size_t n, int flags) LW_SAMPLED_PATH;
void* lw_sampled_api_ri(void* (*fn)(void*, size_t, int), void* old, size_t n, int flags) LW_SAMPLED_PATH;

#endif /* LEAKWATCH_PRELOAD_API_INTERNAL_H */
