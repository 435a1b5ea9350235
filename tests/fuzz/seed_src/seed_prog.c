/* Seed executable for the ELF and CFI fuzz targets: calls into the allocator through the
 * PLT, has a few frames of its own (CFI rows with pushes, a realigned stack, alloca). */
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static char* leaf(size_t n) { return strdup(n > 3 ? "four" : "x"); }
__attribute__((noinline)) static char* with_alloca(size_t n) {
  char* buf = alloca(n + 16);
  memset(buf, 'a', n);
  buf[n] = 0;
  return strdup(buf);
}
__attribute__((noinline, force_align_arg_pointer)) static void* aligned(size_t n) {
  double v[4] __attribute__((aligned(32))) = {1, 2, 3, 4};
  return n > 1 ? malloc((size_t)v[n % 4]) : calloc(1, 8);
}
int main(int argc, char** argv) {
  (void)argv;
  char* a = leaf((size_t)argc);
  char* b = with_alloca((size_t)argc * 8);
  void* c = aligned((size_t)argc);
  printf("%s %s %p\n", a, b, c);
  free(a);
  free(b);
  return 0;
}
