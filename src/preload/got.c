/* Rewriting GOT slots: how an injected library comes to see the program's allocations.
 *
 *   object (exe, libfoo.so, libc.so.6 ...)            the library
 *     PT_DYNAMIC: DT_JMPREL / DT_RELA relocations
 *       R_X86_64_JUMP_SLOT  malloc  -> slot ---+
 *       R_X86_64_GLOB_DAT   free    -> slot ---+--->  wrapper (malloc, free, ..., _Znwm, mallocx)
 *                                              |        -> the definition the slot led to
 *     (slot value before: the real definition, or this object's own PLT code when binding is
 *      lazy and the function was not called yet)
 *
 * A slot is rewritten only when it leads where the wrapper forwards (lw_got_name.real), or to
 * the object's own PLT code (lazy binding, not bound yet); a slot bound to another definition
 * (RTLD_DEEPBIND, dlmopen namespaces, an interposer loaded before) is left alone and counted,
 * so every rewritten slot's calls still reach the same allocator.  C++ operators are
 * rewritten only where they lead to a C++ runtime's or the allocator's operator: a
 * program's own operator new may not allocate with malloc, and its delete must then not
 * receive malloc's blocks.
 *
 * Left alone entirely: the library itself, the dynamic loader (it allocates through its own
 * pointers), the vDSO, and the allocator's own library when it is not libc (jemalloc's,
 * tcmalloc's or mimalloc's slots for their own functions are internal to the allocator).
 * libc.so.6 is rewritten: its other functions (strdup, fopen, getline...) call malloc and
 * free through its PLT, which is what a preloaded library sees too.
 *
 * Slots in the RELRO region (read-only after relocation, all of them with -z now) are
 * written with their page made writable for the write and read-only again, as the loader
 * left it.  Each slot is one aligned 8-byte store: a thread calling through it sees the old
 * or the new function, both valid.
 *
 * Passes are serialised by a mutex (the first from leakwatch_inject_init, then one after
 * every dlopen through a rewritten slot).  The loader's own lock order is respected: the
 * objects are listed in one dl_iterate_phdr pass and rewritten in a second, and nothing
 * inside a callback takes the loader's other lock (no dladdr, no dlsym).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preload/preload_internal.h"

#define LW_MAX_OBJECTS 2048
#define LW_NAME_TABLE 512 /* power of two, > 2 x the names */

enum lw_obj_kind {
  LW_OBJ_PLAIN = 0,
  LW_OBJ_SKIP,       /* the library, the loader, the vDSO, the allocator's library */
  LW_OBJ_CXX_RUNTIME /* libstdc++, libc++ */
};

struct lw_obj {
  uintptr_t lo, hi; /* extent of its PT_LOAD segments */
  int kind;
  int defines_malloc;
};

static pthread_mutex_t lw_pass_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct lw_obj lw_objs[LW_MAX_OBJECTS];
static unsigned lw_obj_count;
static const struct lw_got_name* lw_names[LW_NAME_TABLE];

static uint32_t lw_name_hash(const char* s) {
  uint32_t h = 2166136261u;
  for (; *s; ++s)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

static void lw_name_add(const struct lw_got_name* n) {
  for (uint32_t i = lw_name_hash(n->name);; ++i) {
    const struct lw_got_name** e = &lw_names[i & (LW_NAME_TABLE - 1)];
    if (*e == NULL || strcmp((*e)->name, n->name) == 0) {
      *e = n;
      return;
    }
  }
}

static const struct lw_got_name* lw_name_find(const char* s) {
  for (uint32_t i = lw_name_hash(s);; ++i) {
    const struct lw_got_name* e = lw_names[i & (LW_NAME_TABLE - 1)];
    if (e == NULL || strcmp(e->name, s) == 0)
      return e;
  }
}

static const char* lw_basename(const char* path) {
  const char* slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static int lw_starts_with(const char* s, const char* prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void lw_extent(const struct dl_phdr_info* info, uintptr_t* lo, uintptr_t* hi) {
  *lo = UINTPTR_MAX;
  *hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD)
      continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (a < *lo)
      *lo = a;
    if (a + ph->p_memsz > *hi)
      *hi = a + ph->p_memsz;
  }
}

static const struct lw_obj* lw_obj_of(uintptr_t addr) {
  for (unsigned i = 0; i < lw_obj_count; ++i)
    if (addr >= lw_objs[i].lo && addr < lw_objs[i].hi)
      return &lw_objs[i];
  return NULL;
}

/* Pass 1: what each loaded object is. */
static int lw_list_object(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  (void)data;
  if (lw_obj_count == LW_MAX_OBJECTS)
    return 1;
  struct lw_obj* o = &lw_objs[lw_obj_count];
  lw_extent(info, &o->lo, &o->hi);
  if (o->lo >= o->hi)
    return 0;
  const char* base = lw_basename(info->dlpi_name ? info->dlpi_name : "");
  uintptr_t self = (uintptr_t)&lw_list_object;
  uintptr_t real_malloc = (uintptr_t)lw_real.malloc;
  o->defines_malloc = real_malloc >= o->lo && real_malloc < o->hi;
  o->kind = LW_OBJ_PLAIN;
  if ((self >= o->lo && self < o->hi) || lw_starts_with(base, "ld-linux") ||
      lw_starts_with(base, "linux-vdso") || lw_starts_with(base, "linux-gate") ||
      (o->defines_malloc && !lw_starts_with(base, "libc.so")))
    o->kind = LW_OBJ_SKIP;
  else if (lw_starts_with(base, "libstdc++") || lw_starts_with(base, "libc++"))
    o->kind = LW_OBJ_CXX_RUNTIME;
  lw_obj_count++;
  return 0;
}

struct lw_pass {
  struct leakwatch_inject_result* res;
  size_t summary_len;
  long page;
  unsigned slots;
};

static void lw_note(struct lw_pass* p, const char* fmt, const char* a, const char* b) {
  if (p->res == NULL || p->summary_len + 2 >= sizeof(p->res->summary))
    return;
  int n = snprintf(p->res->summary + p->summary_len, sizeof(p->res->summary) - p->summary_len,
                   fmt, a, b);
  if (n > 0)
    p->summary_len += (size_t)n;
  if (p->summary_len >= sizeof(p->res->summary))
    p->summary_len = sizeof(p->res->summary) - 1;
}

/* Whether a slot holding `value` (in the object spanning [lo, hi)) may be made to lead to
 * the wrapper of `n`. */
static int lw_slot_allowed(const struct lw_got_name* n, uintptr_t value, uintptr_t lo,
                           uintptr_t hi, int lazy_ok) {
  if (lazy_ok && value >= lo && value < hi)
    return 1; /* its own PLT code: lazy binding, not bound yet */
  if (n->real != NULL) {
    void* real = __atomic_load_n(n->real, __ATOMIC_ACQUIRE);
    return real != NULL && value == (uintptr_t)real;
  }
  const struct lw_obj* def = lw_obj_of(value);
  return def != NULL && (def->kind == LW_OBJ_CXX_RUNTIME || def->defines_malloc);
}

static void lw_write_slot(struct lw_pass* p, uintptr_t slot, void* wrapper, uintptr_t relro_lo,
                          uintptr_t relro_hi) {
  uintptr_t page = slot & ~(uintptr_t)(p->page - 1);
  int protect = page >= relro_lo && page < relro_hi;
  if (protect && mprotect((void*)page, (size_t)p->page, PROT_READ | PROT_WRITE) != 0)
    return;
  __atomic_store_n((void**)slot, wrapper, __ATOMIC_RELEASE);
  if (protect) {
    mprotect((void*)page, (size_t)p->page, PROT_READ);
    if (p->res)
      p->res->relro_pages++;
  }
  p->slots++;
  if (p->res)
    p->res->slots_rewritten++;
}

static uintptr_t lw_dyn_ptr(uintptr_t ptr, uintptr_t base) {
  /* glibc relocates the dynamic section's pointers in place where it is writable; the
   * vDSO's (and a read-only one's) are still link-time addresses. */
  return ptr < base ? ptr + base : ptr;
}

static void lw_rewrite_relocs(struct lw_pass* p, const struct dl_phdr_info* info,
                              const ElfW(Rela)* rel, size_t count, const ElfW(Sym)* symtab,
                              const char* strtab, size_t strsz, uintptr_t lo, uintptr_t hi,
                              uintptr_t relro_lo, uintptr_t relro_hi) {
  for (size_t i = 0; i < count; ++i) {
    unsigned type = ELF64_R_TYPE(rel[i].r_info);
    if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
      continue;
    const ElfW(Sym)* sym = &symtab[ELF64_R_SYM(rel[i].r_info)];
    if (sym->st_name >= strsz)
      continue;
    const struct lw_got_name* n = lw_name_find(strtab + sym->st_name);
    if (n == NULL)
      continue;
    uintptr_t slot = info->dlpi_addr + rel[i].r_offset;
    uintptr_t value = (uintptr_t)__atomic_load_n((void**)slot, __ATOMIC_ACQUIRE);
    if (value == (uintptr_t)n->wrapper)
      continue;
    if (!lw_slot_allowed(n, value, lo, hi, type == R_X86_64_JUMP_SLOT)) {
      if (value != 0 && p->res) {
        p->res->slots_bound_elsewhere++;
        lw_note(p, "%s in %s bound to another definition; ", n->name,
                *info->dlpi_name ? lw_basename(info->dlpi_name) : "the executable");
      }
      continue;
    }
    lw_write_slot(p, slot, n->wrapper, relro_lo, relro_hi);
  }
}

/* Pass 2: rewrite one object's slots. */
static int lw_rewrite_object(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  struct lw_pass* p = data;
  uintptr_t lo, hi;
  lw_extent(info, &lo, &hi);
  const struct lw_obj* o = lw_obj_of(lo);
  if (o == NULL || o->lo != lo)
    return 0; /* loaded after pass 1: the next pass sees it */
  if (o->kind == LW_OBJ_SKIP) {
    if (p->res)
      p->res->skipped_objects++;
    return 0;
  }
  const ElfW(Dyn)* dyn = NULL;
  uintptr_t relro_lo = 0, relro_hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_DYNAMIC)
      dyn = (const ElfW(Dyn)*)(info->dlpi_addr + ph->p_vaddr);
    if (ph->p_type == PT_GNU_RELRO) {
      /* As the loader protects it: whole pages from the start's page to the end's. */
      uintptr_t a = info->dlpi_addr + ph->p_vaddr;
      relro_lo = a & ~(uintptr_t)(p->page - 1);
      relro_hi = (a + ph->p_memsz) & ~(uintptr_t)(p->page - 1);
    }
  }
  if (dyn == NULL)
    return 0;
  if (p->res)
    p->res->objects++;
  uintptr_t symtab = 0, strtab = 0, jmprel = 0, rela = 0;
  size_t strsz = 0, pltrelsz = 0, relasz = 0, relaent = sizeof(ElfW(Rela));
  long pltrel = DT_RELA;
  for (const ElfW(Dyn)* d = dyn; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_SYMTAB: symtab = lw_dyn_ptr(d->d_un.d_ptr, info->dlpi_addr); break;
      case DT_STRTAB: strtab = lw_dyn_ptr(d->d_un.d_ptr, info->dlpi_addr); break;
      case DT_STRSZ: strsz = d->d_un.d_val; break;
      case DT_JMPREL: jmprel = lw_dyn_ptr(d->d_un.d_ptr, info->dlpi_addr); break;
      case DT_PLTRELSZ: pltrelsz = d->d_un.d_val; break;
      case DT_PLTREL: pltrel = (long)d->d_un.d_val; break;
      case DT_RELA: rela = lw_dyn_ptr(d->d_un.d_ptr, info->dlpi_addr); break;
      case DT_RELASZ: relasz = d->d_un.d_val; break;
      case DT_RELAENT: relaent = d->d_un.d_val; break;
      default: break;
    }
  }
  if (symtab == 0 || strtab == 0 || relaent != sizeof(ElfW(Rela)))
    return 0;
  const ElfW(Sym)* syms = (const ElfW(Sym)*)symtab;
  const char* strs = (const char*)strtab;
  if (rela != 0)
    lw_rewrite_relocs(p, info, (const ElfW(Rela)*)rela, relasz / sizeof(ElfW(Rela)), syms, strs,
                      strsz, lo, hi, relro_lo, relro_hi);
  if (jmprel != 0 && pltrel == DT_RELA)
    lw_rewrite_relocs(p, info, (const ElfW(Rela)*)jmprel, pltrelsz / sizeof(ElfW(Rela)), syms,
                      strs, strsz, lo, hi, relro_lo, relro_hi);
  return 0;
}

void lw_got_pass(struct leakwatch_inject_result* res, const struct lw_got_name* extra,
                 unsigned extra_count) {
  pthread_mutex_lock(&lw_pass_mutex);
  static int built; /* the name table, built once (under the mutex) */
  if (!built) {
    for (unsigned i = 0; i < lw_c_name_count; ++i)
      lw_name_add(&lw_c_names[i]);
    for (unsigned i = 0; i < lw_cxx_name_count; ++i)
      lw_name_add(&lw_cxx_names[i]);
    for (unsigned i = 0; i < lw_api_name_count; ++i)
      lw_name_add(&lw_api_names[i]);
    for (unsigned i = 0; i < extra_count; ++i)
      lw_name_add(&extra[i]);
    built = 1;
  }
  lw_obj_count = 0;
  dl_iterate_phdr(lw_list_object, NULL);
  struct lw_pass p = {.res = res, .summary_len = res ? strlen(res->summary) : 0,
                      .page = sysconf(_SC_PAGESIZE)};
  dl_iterate_phdr(lw_rewrite_object, &p);
  LW_STAT_ADD(got_slots, p.slots);
  LW_STAT_ADD(got_passes, 1);
  pthread_mutex_unlock(&lw_pass_mutex);
}
