// Symbolization of user-space addresses of one process with elfutils (libdwfl):
// function (demangled) + offset, module, file:line where DWARF exists.
//
// Thread-safety: a ProcessSymbolizer is not thread-safe; use one per thread or lock.
#pragma once

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

// One memory mapping of an executable object, as read from /proc/PID/maps.
struct Mapping {
  uint64_t start = 0, end = 0, file_offset = 0;
  std::string path;
};

class ProcessSymbolizer {
 public:
  // Reads /proc/PID/maps.  Objects are opened through /proc/PID/root so processes in
  // another mount namespace resolve; falls back to the path itself.
  [[nodiscard]] static Result<std::unique_ptr<ProcessSymbolizer>> Create(int pid);
  virtual ~ProcessSymbolizer() = default;

  // Re-reads the maps (libraries loaded after start, e.g. dlopen).  When the process has
  // exited, keeps what it had and returns ok: reports of exited processes stay symbolized.
  virtual Result<void> refresh() = 0;

  // Symbolizes one address.  Unknown addresses give a Symbol with empty function.
  // An address outside every known mapping triggers one refresh() first.
  virtual Symbol symbolize(uint64_t address) = 0;

  virtual const std::vector<Mapping>& mappings() const = 0;
};

// Demangles a C++ symbol name; returns the input when it is not a mangled name.
std::string demangle(const std::string& name);

}  // namespace leakwatch::symbolize
