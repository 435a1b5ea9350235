// Which frame of a stack names the code that asked for the memory: the innermost frame that
// is not the allocator, libc, the dynamic linker, the C++ runtime, a compiler runtime or
// leakwatch's own library.
//
// A frame is "runtime" by its object when that object is one of those libraries (libc.so.6,
// libstdc++.so.6, libjemalloc.so.2, libleakwatch-preload.so, ...), and by its symbol when the
// code was linked or inlined into the program: the standard library's namespaces (std::,
// __gnu_cxx::, __cxxabiv1::), the C++ allocation operators, the allocator families' entry
// points and internals (malloc, _int_malloc, sysmalloc, je_*, tc_*, tcmalloc::, mi_*), the
// system calls that grow a heap (brk, sbrk, mmap).  So a 256-byte node allocated by
// `std::unordered_map::operator[]` inside `Sessions::open` is charged to `Sessions::open`,
// through libstdc++'s and libc's frames or their inlined copies.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "report/model.h"

namespace leakwatch::report {

// The qualified name of a demangled function, without its return type, template arguments
// of the function itself or parameters: "void std::vector<int>::_M_realloc_insert<int>(...)"
// -> "std::vector<int>::_M_realloc_insert".
std::string qualified_name(std::string_view demangled);

// Whether an object (basename, e.g. "libc.so.6") is a runtime library.
bool is_runtime_object(std::string_view module);
// Whether a symbol is runtime code wherever it is linked.
bool is_runtime_symbol(std::string_view demangled);
// Either of the above.
bool is_runtime_frame(const Frame& f);
// Whether a function is by its name an allocation wrapper of the program's own: a short
// prefix, an allocation verb and a variant ("zmalloc_usable", "xstrdup", "g_malloc0",
// "PyMem_Malloc"), which the culprit skips for its caller.
bool is_allocation_wrapper(std::string_view demangled);

// Index of the culprit frame: the innermost non-runtime frame with a name that is not an
// allocation wrapper; failing that the innermost wrapper, then the innermost non-runtime frame
// (an unsymbolized address in the program); nullopt when every frame is runtime (or there
// are none).
std::optional<size_t> culprit_index(std::span<const Frame> frames);

}  // namespace leakwatch::report
