/* Every replaceable operator new / delete form, defined in C under its mangled name.
 *
 * Why define them here rather than leave them to libstdc++ (whose operator new calls our
 * malloc): libstdc++ is built without frame pointers, so a hook reached through its
 * operator new would show [hook, operator new, caller of the caller of new, ...]: the
 * function that called new is lost, and in C++ programs that is most allocations.  Defined
 * here, the sampled path (lw_sampled_new, entered by a tail jump, with a frame pointer)
 * shows [hook, caller of new, ...], as for malloc.
 * Being earlier in the search order than libstdc++, these definitions are the ones the
 * program and libstdc++ itself bind to.
 *
 * Why C: no libstdc++ dependency (the library is also loaded into C programs) and nothing
 * to throw from here.  The only path that needs C++ semantics is failure: the standard
 * operator new calls the new_handler in a loop and throws std::bad_alloc when there is
 * none.  On failure we call the next definition of the same operator (libstdc++'s, found
 * with dlsym(RTLD_NEXT)), which does exactly that: calls the handler, retries (through our
 * malloc, so a success there is still sampled), throws or returns NULL (nothrow forms).
 * The exception unwinds through our frame with the .eh_frame the compiler emits for C.
 *
 * Deletes of every form release with free (sizes and alignments are not needed by malloc's
 * free, and libstdc++'s deletes do the same).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "preload/preload_internal.h"

enum lw_new_form {
  LW_NEW = 0,
  LW_NEW_ARRAY,
  LW_NEW_NOTHROW,
  LW_NEW_ARRAY_NOTHROW,
  LW_NEW_ALIGNED,
  LW_NEW_ARRAY_ALIGNED,
  LW_NEW_ALIGNED_NOTHROW,
  LW_NEW_ARRAY_ALIGNED_NOTHROW,
  LW_NEW_FORMS,
};

static const char* const lw_new_names[LW_NEW_FORMS] = {
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
};

static void* lw_next_new[LW_NEW_FORMS];

typedef void* (*lw_new_fn)(size_t);
typedef void* (*lw_new_nothrow_fn)(size_t, const void*);
typedef void* (*lw_new_aligned_fn)(size_t, size_t);
typedef void* (*lw_new_aligned_nothrow_fn)(size_t, size_t, const void*);

static void lw_no_next_new(void) {
  static const char msg[] =
      "libleakwatch-preload: operator new failed and no C++ runtime defines it after us\n";
  ssize_t r = write(2, msg, sizeof(msg) - 1);
  (void)r;
  abort();
}

/* The allocation failed: let the C++ runtime's operator new apply the standard semantics. */
void* lw_new_failed(int form, size_t n, size_t align, const void* tag) {
  void* next = __atomic_load_n(&lw_next_new[form], __ATOMIC_ACQUIRE);
  if (next == NULL) {
    /* Injected, the library is not in the global scope: a lookup there finds the C++
     * runtime's operator. */
    next = dlsym(lw_injected ? lw_global_scope() : RTLD_NEXT, lw_new_names[form]);
    __atomic_store_n(&lw_next_new[form], next, __ATOMIC_RELEASE);
  }
  int nothrow = form == LW_NEW_NOTHROW || form == LW_NEW_ARRAY_NOTHROW ||
                form == LW_NEW_ALIGNED_NOTHROW || form == LW_NEW_ARRAY_ALIGNED_NOTHROW;
  if (next == NULL) {
    if (nothrow)
      return NULL;
    lw_no_next_new();
  }
  switch (form) {
    case LW_NEW:
    case LW_NEW_ARRAY:
      return ((lw_new_fn)next)(n);
    case LW_NEW_NOTHROW:
    case LW_NEW_ARRAY_NOTHROW:
      return ((lw_new_nothrow_fn)next)(n, tag);
    case LW_NEW_ALIGNED:
    case LW_NEW_ARRAY_ALIGNED:
      return ((lw_new_aligned_fn)next)(n, align);
    default:
      return ((lw_new_aligned_nothrow_fn)next)(n, align, tag);
  }
}

/* Plain forms: malloc.  Unsampled: a call, because a NULL result must become the C++
 * runtime's failure semantics; otherwise a tail jump to the sampled path. */
LW_ALWAYS_INLINE void* lw_new_body(enum lw_new_form form, size_t n, const void* tag) {
  if (LW_UNLIKELY(!lw_charge(n)))
    return lw_sampled_new(form, n, tag);
  void* p = lw_real.malloc(n);
  if (LW_LIKELY(p != NULL))
    return p;
  return lw_new_failed(form, n, 0, tag);
}

/* Aligned forms: posix_memalign (accepts any power of two >= sizeof(void*)). */
LW_ALWAYS_INLINE void* lw_new_aligned_body(enum lw_new_form form, size_t n, size_t align,
                                           const void* tag) {
  if (LW_UNLIKELY(!lw_charge(n)))
    return lw_sampled_new_aligned(form, n, align, tag);
  size_t a = align < sizeof(void*) ? sizeof(void*) : align;
  void* p = NULL;
  if (LW_UNLIKELY(lw_real.posix_memalign(&p, a, n) != 0 || p == NULL))
    return lw_new_failed(form, n, align, tag);
  return p;
}

#define LW_OP(ret, cname, mangled, params) \
  LW_EXPORT ret cname params __asm__(mangled); \
  extern __typeof(cname) cname##_self __attribute__((alias(mangled), visibility("hidden"))); \
  LW_EXPORT ret cname params

LW_OP(void*, lw_op_new, "_Znwm", (size_t n)) { return lw_new_body(LW_NEW, n, NULL); }
LW_OP(void*, lw_op_new_array, "_Znam", (size_t n)) { return lw_new_body(LW_NEW_ARRAY, n, NULL); }
LW_OP(void*, lw_op_new_nothrow, "_ZnwmRKSt9nothrow_t", (size_t n, const void* tag)) {
  return lw_new_body(LW_NEW_NOTHROW, n, tag);
}
LW_OP(void*, lw_op_new_array_nothrow, "_ZnamRKSt9nothrow_t", (size_t n, const void* tag)) {
  return lw_new_body(LW_NEW_ARRAY_NOTHROW, n, tag);
}
LW_OP(void*, lw_op_new_aligned, "_ZnwmSt11align_val_t", (size_t n, size_t align)) {
  return lw_new_aligned_body(LW_NEW_ALIGNED, n, align, NULL);
}
LW_OP(void*, lw_op_new_array_aligned, "_ZnamSt11align_val_t", (size_t n, size_t align)) {
  return lw_new_aligned_body(LW_NEW_ARRAY_ALIGNED, n, align, NULL);
}
LW_OP(void*, lw_op_new_aligned_nothrow, "_ZnwmSt11align_val_tRKSt9nothrow_t",
      (size_t n, size_t align, const void* tag)) {
  return lw_new_aligned_body(LW_NEW_ALIGNED_NOTHROW, n, align, tag);
}
LW_OP(void*, lw_op_new_array_aligned_nothrow, "_ZnamSt11align_val_tRKSt9nothrow_t",
      (size_t n, size_t align, const void* tag)) {
  return lw_new_aligned_body(LW_NEW_ARRAY_ALIGNED_NOTHROW, n, align, tag);
}

/* Deletes: (p), (p, size), (p, nothrow), (p, align), (p, size, align), (p, align, nothrow),
 * each for delete and delete[]. */
#define LW_DELETE(cname, mangled, ...)                                       \
  LW_EXPORT void cname(void* p, ##__VA_ARGS__) __asm__(mangled);             \
  LW_EXPORT void cname(void* p, ##__VA_ARGS__) { lw_free(p); }              \
  extern __typeof(cname) cname##_self __attribute__((alias(mangled), visibility("hidden")));

LW_DELETE(lw_op_delete, "_ZdlPv")
LW_DELETE(lw_op_delete_array, "_ZdaPv")
LW_DELETE(lw_op_delete_sized, "_ZdlPvm", size_t n __attribute__((unused)))
LW_DELETE(lw_op_delete_array_sized, "_ZdaPvm", size_t n __attribute__((unused)))
LW_DELETE(lw_op_delete_nothrow, "_ZdlPvRKSt9nothrow_t", const void* t __attribute__((unused)))
LW_DELETE(lw_op_delete_array_nothrow, "_ZdaPvRKSt9nothrow_t",
          const void* t __attribute__((unused)))
LW_DELETE(lw_op_delete_aligned, "_ZdlPvSt11align_val_t", size_t a __attribute__((unused)))
LW_DELETE(lw_op_delete_array_aligned, "_ZdaPvSt11align_val_t",
          size_t a __attribute__((unused)))
LW_DELETE(lw_op_delete_sized_aligned, "_ZdlPvmSt11align_val_t",
          size_t n __attribute__((unused)), size_t a __attribute__((unused)))
LW_DELETE(lw_op_delete_array_sized_aligned, "_ZdaPvmSt11align_val_t",
          size_t n __attribute__((unused)), size_t a __attribute__((unused)))
LW_DELETE(lw_op_delete_aligned_nothrow, "_ZdlPvSt11align_val_tRKSt9nothrow_t",
          size_t a __attribute__((unused)), const void* t __attribute__((unused)))
LW_DELETE(lw_op_delete_array_aligned_nothrow, "_ZdaPvSt11align_val_tRKSt9nothrow_t",
          size_t a __attribute__((unused)), const void* t __attribute__((unused)))

/* The GOT rewriting's C++ names (injection): the library's own definitions (hidden aliases,
 * whatever the names bind to).  A slot is rewritten only when it leads to a C++ runtime's
 * or the allocator's operator (got.c): a program's own operator new may not use malloc. */
#define LW_CXX(cname, mangled) {mangled, (void*)cname##_self, NULL}
const struct lw_got_name lw_cxx_names[] = {
    LW_CXX(lw_op_new, "_Znwm"),
    LW_CXX(lw_op_new_array, "_Znam"),
    LW_CXX(lw_op_new_nothrow, "_ZnwmRKSt9nothrow_t"),
    LW_CXX(lw_op_new_array_nothrow, "_ZnamRKSt9nothrow_t"),
    LW_CXX(lw_op_new_aligned, "_ZnwmSt11align_val_t"),
    LW_CXX(lw_op_new_array_aligned, "_ZnamSt11align_val_t"),
    LW_CXX(lw_op_new_aligned_nothrow, "_ZnwmSt11align_val_tRKSt9nothrow_t"),
    LW_CXX(lw_op_new_array_aligned_nothrow, "_ZnamSt11align_val_tRKSt9nothrow_t"),
    LW_CXX(lw_op_delete, "_ZdlPv"),
    LW_CXX(lw_op_delete_array, "_ZdaPv"),
    LW_CXX(lw_op_delete_sized, "_ZdlPvm"),
    LW_CXX(lw_op_delete_array_sized, "_ZdaPvm"),
    LW_CXX(lw_op_delete_nothrow, "_ZdlPvRKSt9nothrow_t"),
    LW_CXX(lw_op_delete_array_nothrow, "_ZdaPvRKSt9nothrow_t"),
    LW_CXX(lw_op_delete_aligned, "_ZdlPvSt11align_val_t"),
    LW_CXX(lw_op_delete_array_aligned, "_ZdaPvSt11align_val_t"),
    LW_CXX(lw_op_delete_sized_aligned, "_ZdlPvmSt11align_val_t"),
    LW_CXX(lw_op_delete_array_sized_aligned, "_ZdaPvmSt11align_val_t"),
    LW_CXX(lw_op_delete_aligned_nothrow, "_ZdlPvSt11align_val_tRKSt9nothrow_t"),
    LW_CXX(lw_op_delete_array_aligned_nothrow, "_ZdaPvSt11align_val_tRKSt9nothrow_t"),
};
const unsigned lw_cxx_name_count = sizeof(lw_cxx_names) / sizeof(lw_cxx_names[0]);
