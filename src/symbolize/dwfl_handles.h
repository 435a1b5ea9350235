// Move-only owners of elfutils handles.  A Dwfl owns its Dwfl_Modules (and their Elf,
// DWARF and file descriptors); an Elf we open ourselves is owned by an ElfHandle.
//
// Thread-safety: like unique_ptr; the handles themselves are not thread-safe in elfutils.
#pragma once

#include <elfutils/libdwfl.h>
#include <libelf.h>

#include <memory>

namespace leakwatch::symbolize {

struct DwflDeleter {
  void operator()(Dwfl* d) const { dwfl_end(d); }
};
using DwflHandle = std::unique_ptr<Dwfl, DwflDeleter>;

struct ElfDeleter {
  void operator()(Elf* e) const { elf_end(e); }
};
using ElfHandle = std::unique_ptr<Elf, ElfDeleter>;

}  // namespace leakwatch::symbolize
