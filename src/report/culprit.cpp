#include "report/culprit.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <regex>

namespace leakwatch::report {
namespace {

bool starts_with_any(std::string_view s, std::span<const std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](std::string_view p) { return s.starts_with(p); });
}

// "libc-2.31.so" but not "libc-client.so": a runtime name followed by a version.
bool versioned(std::string_view module, std::string_view stem) {
  if (!module.starts_with(stem) || module.size() <= stem.size()) return false;
  const char next = module[stem.size()];
  if (next == '.') return true;  // libc.so.6, libstdc++.so.6.0.30
  return next == '-' && module.size() > stem.size() + 1 &&
         std::isdigit(static_cast<unsigned char>(module[stem.size() + 1]));
}

// Length of the operator's symbol after "operator" at `i` ("()", "<<=", " new[]", ...).
size_t operator_symbol_length(std::string_view s, size_t i) {
  size_t j = i;
  if (s.substr(j).starts_with("()")) return 2;
  if (s.substr(j).starts_with("[]")) return 2;
  if (j < s.size() && s[j] == ' ') {  // operator new, operator delete[], conversions
    ++j;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
    if (s.substr(j).starts_with("[]")) j += 2;
    return j - i;
  }
  while (j < s.size() && std::string_view("<>=!+-*/%&|^~,").find(s[j]) != std::string_view::npos)
    ++j;
  return j - i;
}

}  // namespace

std::string qualified_name(std::string_view s) {
  constexpr std::string_view kAnon = "(anonymous namespace)";
  int angle = 0, paren = 0, brace = 0;
  size_t name_start = 0, end = s.size();
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (s.substr(i).starts_with(kAnon)) {
      i += kAnon.size() - 1;
      continue;
    }
    if (s.substr(i).starts_with("operator") && (i == 0 || !std::isalnum(static_cast<unsigned char>(s[i - 1]))) &&
        (i + 8 >= s.size() || !std::isalnum(static_cast<unsigned char>(s[i + 8])) ||
         s[i + 8] == ' ')) {
      i += 8 + operator_symbol_length(s, i + 8) - 1;
      continue;
    }
    if (c == '<') ++angle;
    else if (c == '>' && angle > 0) --angle;
    else if (c == '{') ++brace;
    else if (c == '}' && brace > 0) --brace;
    else if (c == '(' && angle == 0 && brace == 0) {
      if (paren == 0) {
        end = i;
        break;
      }
      ++paren;
    } else if (c == ' ' && angle == 0 && brace == 0) {
      name_start = i + 1;  // what came before was a return type
    }
  }
  std::string_view name = s.substr(name_start, end - name_start);
  // The function's own template arguments: "f<int>" -> "f" (not "operator<").
  if (name.ends_with('>') && !name.ends_with("operator>") && !name.ends_with("operator>>") &&
      !name.ends_with("operator->")) {
    int depth = 0;
    for (size_t i = name.size(); i-- > 0;) {
      if (name[i] == '>') ++depth;
      else if (name[i] == '<' && --depth == 0) {
        name = name.substr(0, i);
        break;
      }
    }
  }
  return std::string(name);
}

bool is_runtime_object(std::string_view m) {
  static constexpr std::array<std::string_view, 9> kStems{
      "libc", "libm", "libpthread", "libdl", "librt", "libstdc++", "libc++", "libc++abi",
      "libgcc_s"};
  if (std::any_of(kStems.begin(), kStems.end(), [&](std::string_view s) { return versioned(m, s); }))
    return true;
  static constexpr std::array<std::string_view, 16> kPrefixes{
      "ld-linux", "ld-musl", "ld64.so", "libc.musl", "libsupc++", "libjemalloc", "libtcmalloc",
      "libmimalloc", "libhoard", "libleakwatch", "libasan", "liblsan", "libtsan", "libubsan",
      "libmemusage", "["};  // [vdso], [vsyscall], [kernel], [unknown]
  return starts_with_any(m, kPrefixes);
}

bool is_runtime_symbol(std::string_view demangled) {
  const std::string q = qualified_name(demangled);
  static constexpr std::array<std::string_view, 31> kPrefixes{
      "std::",    "__gnu_cxx::", "__cxxabiv1::", "__cxa_",      "__gnu_",     "__libc_",
      "_int_",    "__GI_",       "__glibc_",     "_dl_",        "_IO_",       "je_",
      "tc_",      "tcmalloc::",  "mi_",          "_mi_",        "__asan",     "__lsan",
      "__interceptor_", "__sanitizer", "leakwatch_", "__malloc_", "__posix_memalign",
      "__libc", "__default_morecore", "__mmap", "__brk", "__sbrk", "__munmap", "__mremap",
      "__mem"};  // __memset_avx2_unaligned_erms & co
  if (starts_with_any(q, kPrefixes)) return true;
  static constexpr std::array<std::string_view, 36> kNames{
      "operator new",  "operator new[]", "operator delete", "operator delete[]", "malloc",
      "calloc",        "realloc",        "reallocarray",    "free",              "cfree",
      "posix_memalign", "aligned_alloc", "memalign",        "valloc",            "pvalloc",
      "strdup",        "strndup",        "__strdup",        "__strndup",         "sysmalloc",
      "sysmalloc_mmap", "morecore",      "mmap",            "mmap64",            "brk",
      "sbrk",          "__sbrk",         "malloc_consolidate", "tcache_init",    "alloc_perturb",
      "munmap",        "mremap",         "systrim",         "memset",            "memcpy",
      "memmove"};
  return std::find(kNames.begin(), kNames.end(), q) != kNames.end();
}

bool is_allocation_wrapper(std::string_view demangled) {
  std::string q = qualified_name(demangled);
  if (auto colon = q.rfind("::"); colon != std::string::npos) q.erase(0, colon + 2);
  q.erase(0, q.find_first_not_of('_'));
  std::transform(q.begin(), q.end(), q.begin(), [](unsigned char c) { return std::tolower(c); });
  // A one-letter or short library prefix, an allocation verb, an optional variant suffix:
  // xmalloc, zmalloc_usable, ztrymalloc_usable, emalloc, g_malloc0, xstrdup, av_mallocz,
  // PyMem_Malloc, CRYPTO_zalloc, sqlite3MallocZero.  Not leaky_malloc, malloc_leak or
  // do_alloc: an application function with a longer name is named itself.
  static const std::regex kWrapper(
      "(x|z|e|g_|try|ztry|safe_e|av_|pymem_|pymem_raw|pyobject_|crypto_|openssl_|ruby_x|"
      "sqlite3|sqlite3db)?(malloc|calloc|realloc|zalloc|strdup|strndup)"
      "(z|0|n|zero|raw|_usable|_n|_0|_aligned|_array|_atomic|_zero|_raw|_nolock|_internal)?",
      std::regex::optimize);
  return std::regex_match(q, kWrapper);
}

bool is_runtime_frame(const Frame& f) {
  if (!f.module.empty() && is_runtime_object(f.module)) return true;
  return !f.function.empty() && is_runtime_symbol(f.function);
}

std::optional<size_t> culprit_index(std::span<const Frame> frames) {
  std::optional<size_t> unnamed, wrapper;
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    if (is_runtime_frame(f)) continue;
    if (!f.function.empty()) {
      // The program's own allocation wrapper (redis' zmalloc, git's xmalloc) is charged to
      // its caller; it is named only when nothing named calls it.
      if (is_allocation_wrapper(f.function)) {
        if (!wrapper) wrapper = i;
        continue;
      }
      return i;
    }
    if (!unnamed && !f.module.empty()) unnamed = i;
  }
  return wrapper ? wrapper : unnamed;
}

}  // namespace leakwatch::report
