/* Loaded into a running process: leakwatch_inject_init and the dlopen wrapper.
 *
 *   leakwatch (ptrace, src/inject/)        the process
 *     stops a thread at a safe point  -->  dlopen(library, RTLD_NOW | RTLD_NODELETE)
 *                                            constructor: not in the global scope, so
 *                                            "injected": reads no environment (init.c)
 *                                          leakwatch_inject_init(config, result)
 *                                            1. the real functions: what the program binds
 *                                               to (dlsym in the global scope; a non-PIE program's
 *                                               canonical PLT entry is followed to its target)
 *                                            2. GOT pass (got.c), sampling still off: blocks
 *                                               allocated meanwhile are simply never sampled
 *                                            3. configuration published: sampling starts
 *     resumes the thread where it was
 *
 * Blocks allocated before the injection are unknown to the sampled set: free and realloc
 * pass them to the real allocator (the set's filter says "not sampled", preload_internal.h),
 * so they are never reported.
 *
 * dlopen: its slots lead to lw_inject_dlopen, which loads as the caller would have (see
 * lw_dlopen_as_caller) and then runs a GOT pass for the new objects.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preload/preload_internal.h"

/* `addr` when it is a PLT entry (`jmp *slot(%rip)`, optionally after endbr64 and with a bnd
 * prefix): the function its slot leads to when bound, else NULL.  dlsym gives a non-PIE
 * program's canonical PLT entry for a function whose address the program takes; calling
 * through it would come back to a rewritten slot. */
static void* lw_plt_target(void* addr) {
  const uint8_t* c = addr;
  if (c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa)
    c += 4;
  if (c[0] == 0xf2)
    c++;
  if (c[0] != 0xff || c[1] != 0x25)
    return addr;
  int32_t disp;
  memcpy(&disp, c + 2, sizeof(disp));
  void* const* slot = (void* const*)(c + 6 + disp);
  void* target = *slot;
  Dl_info a, b;
  /* Not bound yet (its slot still leads into the same object's PLT): unusable. */
  if (dladdr(addr, &a) && dladdr(target, &b) && a.dli_fbase == b.dli_fbase)
    return NULL;
  return target;
}

static void* lw_resolve_default(const char* name, void* fallback) {
  void* f = dlsym(lw_global_scope(), name);
  if (f != NULL)
    f = lw_plt_target(f);
  return f != NULL ? f : fallback;
}

/* ---- dlopen ---- */

static void* (*lw_real_dlopen)(const char*, int);

/* Appends the directories of a colon-separated list, $ORIGIN expanded, to `dirs`. */
static size_t lw_add_dirs(char* buf, size_t len, size_t cap, const char* list, const char* origin) {
  for (const char* s = list; s != NULL && *s != '\0';) {
    const char* end = strchr(s, ':');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    for (size_t i = 0; i < n && len + strlen(origin) + 2 < cap;) {
      if (strncmp(s + i, "$ORIGIN", 7) == 0 || strncmp(s + i, "${ORIGIN}", 9) == 0) {
        size_t o = strlen(origin);
        memcpy(buf + len, origin, o);
        len += o;
        i += s[i + 1] == '{' ? 9 : 7;
      } else {
        buf[len++] = s[i++];
      }
    }
    if (len + 1 < cap)
      buf[len++] = '\0';
    s = end ? end + 1 : NULL;
  }
  return len;
}

/* dlopen(file) as the program's caller would have done it.  glibc searches a name without a
 * slash with the *caller's* DT_RPATH/DT_RUNPATH (and expands $ORIGIN from the caller's
 * directory); called from here, the caller would be this library, which has neither.  So:
 * an object already loaded under that name is returned as is (RTLD_NOLOAD); otherwise, when
 * the caller has a search path of its own, the name is looked up in it in the loader's order
 * (DT_RPATH, LD_LIBRARY_PATH, DT_RUNPATH) and opened by its full path; else the loader's
 * usual search applies unchanged.  (Not emulated: DT_RPATH of the objects that loaded the
 * caller, and dlmopen namespaces.) */
static void* lw_dlopen_as_caller(const void* caller, const char* file, int mode) {
  if (file == NULL || strchr(file, '/') != NULL)
    return lw_real_dlopen(file, mode);
  void* h = lw_real_dlopen(file, mode | RTLD_NOLOAD);
  if (h != NULL)
    return h;
  (void)dlerror(); /* the program must not see the NOLOAD miss */
  Dl_info info;
  struct link_map* lm = NULL;
  if (!dladdr1(caller, &info, (void**)&lm, RTLD_DL_LINKMAP) || lm == NULL || lm->l_ld == NULL)
    return lw_real_dlopen(file, mode);
  const char* strtab = NULL;
  uintptr_t rpath = 0, runpath = 0;
  int have_rpath = 0, have_runpath = 0;
  for (const ElfW(Dyn)* d = lm->l_ld; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_STRTAB)
      strtab = (const char*)(d->d_un.d_ptr < lm->l_addr ? d->d_un.d_ptr + lm->l_addr
                                                           : d->d_un.d_ptr);
    else if (d->d_tag == DT_RPATH)
      rpath = d->d_un.d_val, have_rpath = 1;
    else if (d->d_tag == DT_RUNPATH)
      runpath = d->d_un.d_val, have_runpath = 1;
  }
  if (strtab == NULL || (!have_rpath && !have_runpath))
    return lw_real_dlopen(file, mode);
  char origin[PATH_MAX];
  const char* name = lm->l_name != NULL && lm->l_name[0] != '\0' ? lm->l_name : NULL;
  if (name != NULL) {
    snprintf(origin, sizeof(origin), "%s", name);
  } else {
    ssize_t n = readlink("/proc/self/exe", origin, sizeof(origin) - 1);
    origin[n > 0 ? n : 0] = '\0';
  }
  char* slash = strrchr(origin, '/');
  if (slash != NULL)
    *slash = '\0';
  char dirs[4096]; /* (on the caller's stack: the library's TLS must stay tiny, see init.c) */
  size_t len = 0;
  if (!have_runpath)
    len = lw_add_dirs(dirs, len, sizeof(dirs), strtab + rpath, origin);
  len = lw_add_dirs(dirs, len, sizeof(dirs), getenv("LD_LIBRARY_PATH"), origin);
  if (have_runpath)
    len = lw_add_dirs(dirs, len, sizeof(dirs), strtab + runpath, origin);
  for (size_t at = 0; at < len; at += strlen(dirs + at) + 1) {
    char path[PATH_MAX];
    if (dirs[at] == '\0')
      continue;
    if (snprintf(path, sizeof(path), "%s/%s", dirs + at, file) < (int)sizeof(path) &&
        access(path, F_OK) == 0)
      return lw_real_dlopen(path, mode);
  }
  return lw_real_dlopen(file, mode);
}

static void* lw_inject_dlopen(const char* file, int mode) {
  void* h = lw_dlopen_as_caller(__builtin_return_address(0), file, mode);
  if (h != NULL)
    lw_got_pass(NULL, NULL, 0);
  return h;
}

static const struct lw_got_name lw_dlopen_names[] = {
    {"dlopen", (void*)lw_inject_dlopen, (void**)&lw_real_dlopen},
};

/* ---- the entry point ---- */

static int lw_inject_done;

LW_EXPORT int leakwatch_inject_init(const struct leakwatch_inject_config* cfg,
                                    struct leakwatch_inject_result* res) {
  memset(res, 0, sizeof(*res));
  if (!lw_injected)
    return LW_INJECT_E_NOT_INJECTED;
  if (cfg->abi_version != LEAKWATCH_INJECT_ABI_VERSION)
    return LW_INJECT_E_ABI;
  if (__atomic_exchange_n(&lw_inject_done, 1, __ATOMIC_ACQ_REL))
    return LW_INJECT_E_ALREADY;

  struct lw_real_fns real = {
      .malloc = lw_resolve_default("malloc", NULL),
      .free = lw_resolve_default("free", NULL),
      .calloc = lw_resolve_default("calloc", __libc_calloc),
      .realloc = lw_resolve_default("realloc", __libc_realloc),
      .posix_memalign = lw_resolve_default("posix_memalign", lw_libc_posix_memalign),
      .aligned_alloc = lw_resolve_default("aligned_alloc", __libc_memalign),
      .memalign = lw_resolve_default("memalign", __libc_memalign),
      .valloc = lw_resolve_default("valloc", __libc_valloc),
      .pvalloc = lw_resolve_default("pvalloc", __libc_pvalloc),
  };
  if (real.malloc == NULL || real.free == NULL)
    return LW_INJECT_E_NO_MALLOC;
  lw_expect_reallocarray = lw_resolve_default("reallocarray", NULL);
  lw_expect_cfree = lw_resolve_default("cfree", NULL);
  lw_real_dlopen = lw_resolve_default("dlopen", NULL);
  lw_resolve_api_names();
  lw_install_real(&real);

  lw_got_pass(res, lw_real_dlopen ? lw_dlopen_names : NULL, lw_real_dlopen ? 1 : 0);
  if (lw_configure_injected(cfg) != 0)
    return LW_INJECT_E_NO_SET;
  return LW_INJECT_OK;
}
