#include "alloc/allocator_catalog.h"

#include <algorithm>
#include <vector>

#include "elf/elf_symbols.h"

namespace leakwatch::alloc {
namespace {

constexpr CatalogEntry kC[] = {
    {"malloc", LW_FN_MALLOC},
    {"calloc", LW_FN_CALLOC},
    {"realloc", LW_FN_REALLOC},
    {"reallocarray", LW_FN_REALLOCARRAY},
    {"posix_memalign", LW_FN_POSIX_MEMALIGN},
    {"aligned_alloc", LW_FN_ALIGNED_ALLOC},  // (alignment, size)
    {"memalign", LW_FN_ALIGNED_ALLOC},       // (alignment, size)
    {"valloc", LW_FN_VALLOC},
    {"pvalloc", LW_FN_VALLOC},
    {"free", LW_FN_FREE},
    {"cfree", LW_FN_FREE},
};

constexpr CatalogEntry kMap[] = {
    {"mmap", LW_FN_MMAP},
    {"mmap64", LW_FN_MMAP},
    {"munmap", LW_FN_MUNMAP},
    {"mremap", LW_FN_MREMAP},
};

constexpr CatalogEntry kCxx[] = {
    {"_Znwm", LW_FN_NEW},
    {"_Znam", LW_FN_NEW},
    {"_ZnwmRKSt9nothrow_t", LW_FN_NEW},
    {"_ZnamRKSt9nothrow_t", LW_FN_NEW},
    {"_ZnwmSt11align_val_t", LW_FN_NEW},
    {"_ZnamSt11align_val_t", LW_FN_NEW},
    {"_ZnwmSt11align_val_tRKSt9nothrow_t", LW_FN_NEW},
    {"_ZnamSt11align_val_tRKSt9nothrow_t", LW_FN_NEW},
    {"_ZdlPv", LW_FN_FREE},
    {"_ZdaPv", LW_FN_FREE},
    {"_ZdlPvm", LW_FN_FREE},
    {"_ZdaPvm", LW_FN_FREE},
    {"_ZdlPvSt11align_val_t", LW_FN_FREE},
    {"_ZdaPvSt11align_val_t", LW_FN_FREE},
    {"_ZdlPvmSt11align_val_t", LW_FN_FREE},
    {"_ZdaPvmSt11align_val_t", LW_FN_FREE},
    {"_ZdlPvRKSt9nothrow_t", LW_FN_FREE},
    {"_ZdaPvRKSt9nothrow_t", LW_FN_FREE},
    {"_ZdlPvSt11align_val_tRKSt9nothrow_t", LW_FN_FREE},
    {"_ZdaPvSt11align_val_tRKSt9nothrow_t", LW_FN_FREE},
};

// jemalloc: mallocx(size, flags), rallocx(ptr, size, flags), dallocx(ptr, flags),
// sdallocx(ptr, size, flags).  The alignment and zeroing requests live in `flags`, so the
// size and pointer sit where malloc's and realloc's do.
constexpr CatalogEntry kJemalloc[] = {
    {"mallocx", LW_FN_MALLOC},
    {"rallocx", LW_FN_REALLOC},
    {"dallocx", LW_FN_FREE},
    {"sdallocx", LW_FN_FREE},
};

// gperftools: most tc_* names are aliases of the standard ones (same address, probed once);
// tc_memalign is (alignment, size), tc_new_aligned (size, alignment), the sized and aligned
// deletes take the pointer first.
constexpr CatalogEntry kTcmalloc[] = {
    {"tc_malloc", LW_FN_MALLOC},
    {"tc_malloc_skip_new_handler", LW_FN_MALLOC},
    {"tc_calloc", LW_FN_CALLOC},
    {"tc_realloc", LW_FN_REALLOC},
    {"tc_memalign", LW_FN_ALIGNED_ALLOC},
    {"tc_posix_memalign", LW_FN_POSIX_MEMALIGN},
    {"tc_valloc", LW_FN_VALLOC},
    {"tc_pvalloc", LW_FN_VALLOC},
    {"tc_free", LW_FN_FREE},
    {"tc_cfree", LW_FN_FREE},
    {"tc_free_sized", LW_FN_FREE},
    {"tc_new", LW_FN_NEW},
    {"tc_newarray", LW_FN_NEW},
    {"tc_new_nothrow", LW_FN_NEW},
    {"tc_newarray_nothrow", LW_FN_NEW},
    {"tc_new_aligned", LW_FN_NEW},
    {"tc_newarray_aligned", LW_FN_NEW},
    {"tc_new_aligned_nothrow", LW_FN_NEW},
    {"tc_newarray_aligned_nothrow", LW_FN_NEW},
    {"tc_delete", LW_FN_FREE},
    {"tc_deletearray", LW_FN_FREE},
    {"tc_delete_nothrow", LW_FN_FREE},
    {"tc_deletearray_nothrow", LW_FN_FREE},
    {"tc_delete_sized", LW_FN_FREE},
    {"tc_deletearray_sized", LW_FN_FREE},
    {"tc_delete_aligned", LW_FN_FREE},
    {"tc_deletearray_aligned", LW_FN_FREE},
    {"tc_delete_sized_aligned", LW_FN_FREE},
    {"tc_deletearray_sized_aligned", LW_FN_FREE},
    {"tc_delete_aligned_nothrow", LW_FN_FREE},
    {"tc_deletearray_aligned_nothrow", LW_FN_FREE},
};

// mimalloc: mi_malloc_aligned(size, alignment) and mi_zalloc(size) have the size first
// (malloc's layout); mi_mallocn(count, size) and mi_calloc_aligned(count, size, alignment)
// multiply like calloc; mi_reallocn(p, count, size) and mi_recalloc(p, count, size) like
// reallocarray; mi_memalign(alignment, size) like aligned_alloc.
constexpr CatalogEntry kMimalloc[] = {
    {"mi_malloc", LW_FN_MALLOC},
    {"mi_zalloc", LW_FN_MALLOC},
    {"mi_malloc_small", LW_FN_MALLOC},
    {"mi_zalloc_small", LW_FN_MALLOC},
    {"mi_malloc_aligned", LW_FN_MALLOC},
    {"mi_zalloc_aligned", LW_FN_MALLOC},
    {"mi_malloc_aligned_at", LW_FN_MALLOC},
    {"mi_zalloc_aligned_at", LW_FN_MALLOC},
    {"mi_calloc", LW_FN_CALLOC},
    {"mi_mallocn", LW_FN_CALLOC},
    {"mi_calloc_aligned", LW_FN_CALLOC},
    {"mi_calloc_aligned_at", LW_FN_CALLOC},
    {"mi_realloc", LW_FN_REALLOC},
    {"mi_reallocf", LW_FN_REALLOC},
    {"mi_rezalloc", LW_FN_REALLOC},
    {"mi_realloc_aligned", LW_FN_REALLOC},
    {"mi_realloc_aligned_at", LW_FN_REALLOC},
    {"mi_reallocn", LW_FN_REALLOCARRAY},
    {"mi_recalloc", LW_FN_REALLOCARRAY},
    {"mi_reallocarray", LW_FN_REALLOCARRAY},
    {"mi_posix_memalign", LW_FN_POSIX_MEMALIGN},
    {"mi_memalign", LW_FN_ALIGNED_ALLOC},
    {"mi_aligned_alloc", LW_FN_ALIGNED_ALLOC},
    {"mi_valloc", LW_FN_VALLOC},
    {"mi_pvalloc", LW_FN_VALLOC},
    {"mi_new", LW_FN_NEW},
    {"mi_new_nothrow", LW_FN_NEW},
    {"mi_new_aligned", LW_FN_NEW},
    {"mi_new_aligned_nothrow", LW_FN_NEW},
    {"mi_new_n", LW_FN_CALLOC},
    {"mi_new_realloc", LW_FN_REALLOC},
    {"mi_new_reallocn", LW_FN_REALLOCARRAY},
    {"mi_free", LW_FN_FREE},
    {"mi_cfree", LW_FN_FREE},
    {"mi_free_size", LW_FN_FREE},
    {"mi_free_aligned", LW_FN_FREE},
    {"mi_free_size_aligned", LW_FN_FREE},
};

constexpr UnsupportedEntry kUnsupported[] = {
    {"xallocx", "resizes in place and returns the new size: needs a kind 'resize in place' "
                "(ptr = arg0, new size = return value)"},
    {"mi_expand", "resizes in place (returns arg0 or NULL): needs a kind 'resize in place' "
                  "(ptr = arg0, new size = arg1 when the return is non-NULL)"},
    {"mi_strdup", "the size is strlen(arg0)+1, known only from the result"},
    {"mi_strndup", "the size is known only from the result"},
    {"mi_realpath", "the size is known only from the result"},
};

bool defines(const elf::ElfObject& elf, const std::string& name, bool executable) {
  auto s = elf.find(name);
  if (!s || s->local) return false;
  return s->dynamic || executable;
}

std::string basename_of(const std::string& p) { return p.substr(p.rfind('/') + 1); }

}  // namespace

std::span<const CatalogEntry> c_functions() { return kC; }
std::span<const CatalogEntry> map_functions() { return kMap; }
std::span<const CatalogEntry> cxx_functions() { return kCxx; }
std::span<const CatalogEntry> jemalloc_functions() { return kJemalloc; }
std::span<const CatalogEntry> tcmalloc_functions() { return kTcmalloc; }
std::span<const CatalogEntry> mimalloc_functions() { return kMimalloc; }
std::span<const UnsupportedEntry> unsupported_functions() { return kUnsupported; }

std::vector<std::string> jemalloc_prefixes(const elf::ElfObject& elf, bool executable) {
  std::vector<std::string> out;
  constexpr std::string_view kMallctl = "mallctl";
  for (const auto& s : elf.symbols()) {
    if (s.local || (!s.dynamic && !executable)) continue;
    std::string_view n = s.name;
    if (!n.ends_with(kMallctl)) continue;
    std::string prefix(n.substr(0, n.size() - kMallctl.size()));
    if (!defines(elf, prefix + "malloc", executable) || !defines(elf, prefix + "free", executable))
      continue;
    if (std::find(out.begin(), out.end(), prefix) == out.end()) out.push_back(prefix);
  }
  std::sort(out.begin(), out.end());
  return out;
}

AllocatorIdentity identify_allocator(const elf::ElfObject& elf, const std::string& path, bool executable) {
  AllocatorIdentity id;
  auto has = [&](const std::string& n) { return defines(elf, n, executable); };
  auto je = jemalloc_prefixes(elf, executable);
  if (!je.empty()) {
    id.family = "jemalloc";
    id.prefix = je.front();
    id.evidence = id.prefix + "mallctl";
    return id;
  }
  if (has("tc_malloc") || has("TCMallocInternalMalloc")) {
    id.family = "tcmalloc";
    id.evidence = has("tc_malloc") ? "tc_malloc" : "TCMallocInternalMalloc";
    return id;
  }
  if (has("mi_malloc")) {
    id.family = "mimalloc";
    id.evidence = "mi_malloc";
    return id;
  }
  std::string base = basename_of(path);
  // musl is one object, libc and dynamic linker at once (ld-musl-*.so.1 / libc.musl-*.so.1);
  // a static musl binary keeps mallocng's internal names when not stripped.
  const bool musl_path = path.find("musl") != std::string::npos;
  if ((musl_path && has("malloc")) || elf.find("__libc_malloc_impl")) {
    id.family = "musl";
    id.evidence = elf.find("__libc_malloc_impl") ? "__libc_malloc_impl" : path;
    return id;
  }
  auto m = elf.find("malloc");
  if (m && (m->version.starts_with("GLIBC_") || (elf.find("__libc_malloc") && elf.find("_int_malloc")) ||
            (base.starts_with("libc.so") && elf.find("__libc_malloc")))) {
    id.family = "glibc";
    id.evidence = m->version.empty() ? "__libc_malloc" : "malloc@" + m->version;
    return id;
  }
  return id;
}

}  // namespace leakwatch::alloc
