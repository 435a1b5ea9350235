// Symbolization of user-space addresses of one process with elfutils (libdwfl):
// function (demangled) + offset, module, file:line where DWARF exists.
//
// How it works (symbolizer.cpp):
//   /proc/PID/maps --executable file mappings--> one Dwfl_Module per loaded object
//     (dwfl_report_elf at the object's load bias, file opened through /proc/PID/root)
//   address --binary search over mappings--> module --libdwfl--> symbol, file:line
// Objects are parsed lazily by libdwfl and kept across refresh() while they stay mapped;
// an object unmapped after a refresh saw it (a dlclose'd library) is kept too, at its old
// range, until something else is mapped there: stacks recorded while it was loaded keep its
// name and symbols.  Symbolized addresses are cached.  Kernel addresses are not handled here; [vdso] and
// anonymous executable memory (JIT) get a module name ("[vdso]", "[anon]") but no symbol.
// Each object keeps its file descriptor open (two with a separate debug file) until it is
// unmapped or the symbolizer is destroyed: size RLIMIT_NOFILE for the processes traced.
//
// Thread-safety: a ProcessSymbolizer is not thread-safe (libdwfl handles are not, and
// symbolize() mutates caches); use one per thread or lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace leakwatch::symbolize {

struct Symbol {
  uint64_t address = 0;
  std::string function;       // demangled C++ name ("" when unknown)
  uint64_t offset = 0;        // address - start of function
  std::string module;         // basename of the mapped object ("" when address is unmapped)
  std::string module_path;    // path as shown in /proc/PID/maps
  std::string build_id;       // lowercase hex, "" when the object has none
  uint64_t module_offset = 0; // ELF virtual address inside the module (address - load bias)
  std::string file;           // source file, "" when no DWARF line info
  int line = 0;
};

// One executable memory mapping, as read from /proc/PID/maps.  Anonymous executable
// memory (JIT code) has an empty path; special mappings keep theirs ("[vdso]").
struct Mapping {
  uint64_t start = 0, end = 0, file_offset = 0;
  std::string path;         // verbatim from maps, " (deleted)" included
  uint64_t inode = 0;
  bool deleted = false;     // the mapped file was unlinked or replaced after mapping
  std::string opened_path;  // how its ELF file was opened ("" when it was not):
                            // /proc/PID/root/..., /proc/PID/map_files/... or the path
};

struct SymbolizerOptions {
  // An address outside every known mapping re-reads the maps first, but at most once per
  // this interval after the first such refresh, so a stream of unknown addresses (JIT
  // code, a stale stack) does not re-read the maps on every call.
  std::chrono::milliseconds min_auto_refresh_interval{500};
  // File:line from DWARF.  Off saves decompressing an object's DWARF on its first lookup
  // (about 260 ms for Debian's libc debug file); names come from the symbol tables.
  bool source_lines = true;
};

// Counters that show what the caches save; cumulative since Create().
struct SymbolizerStats {
  uint64_t maps_reads = 0;      // /proc/PID/maps parsed (Create, refresh, auto-refresh)
  uint64_t auto_refreshes = 0;  // refreshes triggered by unknown addresses
  uint64_t objects_opened = 0;  // ELF files opened and reported to libdwfl
  uint64_t objects_dropped = 0; // objects released after they were unmapped
  uint64_t objects_retired = 0; // unmapped objects kept for addresses recorded earlier (now)
  uint64_t cache_hits = 0;      // symbolize() answered from the address cache
  uint64_t cache_misses = 0;
  bool process_exited = false;  // maps no longer readable: the state is frozen
};

class ProcessSymbolizer {
 public:
  // Reads /proc/PID/maps.  Objects are opened through /proc/PID/root so processes in
  // another mount namespace resolve; falls back to /proc/PID/map_files and the path itself.
  // Fails when the process does not exist or its maps cannot be read.
  [[nodiscard]] static Result<std::unique_ptr<ProcessSymbolizer>> Create(int pid);
  [[nodiscard]] static Result<std::unique_ptr<ProcessSymbolizer>> Create(
      int pid, const SymbolizerOptions& options);
  virtual ~ProcessSymbolizer() = default;

  // Re-reads the maps (libraries loaded after start, e.g. dlopen).  When the process has
  // exited, keeps what it had and returns ok: reports of exited processes stay symbolized.
  // Once the process is seen gone the maps are never read again (its pid may be reused).
  virtual Result<void> refresh() = 0;

  // Symbolizes one address.  Unknown addresses give a Symbol with empty function.
  // An address outside every known mapping triggers one refresh() first (rate-limited,
  // see SymbolizerOptions).  The result is for the exact address: for a return address
  // taken from a stack, pass address - 1 to get the line of the call.
  virtual Symbol symbolize(uint64_t address) = 0;

  // The executable mappings, sorted by start address.
  virtual const std::vector<Mapping>& mappings() const = 0;

  virtual SymbolizerStats stats() const = 0;
};

// Demangles a C++ symbol name; returns the input when it is not a mangled name.
std::string demangle(const std::string& name);

}  // namespace leakwatch::symbolize
