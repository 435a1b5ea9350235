/* Seed object for the ELF fuzz targets: a small allocator library with the shapes the
 * allocator planning looks for (the C API, a prefixed API next to je_mallctl, a thunk that
 * tail-jumps to free, a wrapper that calls malloc through the PLT), versioned symbols and
 * a dynamic section with SONAME, RUNPATH and DT_NEEDED. */
#include <stddef.h>
#include <string.h>

static char arena[1 << 16];
static size_t used;

void* malloc(size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n > sizeof arena - used) return NULL;
  void* p = arena + used;
  used += n;
  return p;
}
void free(void* p) { (void)p; }
void* calloc(size_t a, size_t b) {
  void* p = malloc(a * b);
  if (p) memset(p, 0, a * b);
  return p;
}
void* realloc(void* p, size_t n) {
  void* q = malloc(n);
  if (q && p) memcpy(q, p, n);
  return q;
}
void* je_malloc(size_t n) { return malloc(n); }
void je_free(void* p) { free(p); }
int je_mallctl(const char* name, void* old, size_t* oldlen, void* newp, size_t newlen) {
  (void)name; (void)old; (void)oldlen; (void)newp; (void)newlen;
  return 0;
}
__attribute__((noinline)) void seed_delete(void* p) { free(p); }
void* seed_new(size_t n) { return malloc(n ? n : 1); }
__asm__(".symver seed_old_impl, seed_versioned@SEED_1.0");
__asm__(".symver seed_new_impl, seed_versioned@@SEED_2.0");
int seed_old_impl(void) { return 1; }
int seed_new_impl(void) { return 2; }
