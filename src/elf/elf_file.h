// Opening an object with libelf, once for every reader (symbols, the dynamic section, CFI,
// the preload library's data): libelf initialised once, thread-safely, and the Elf handle
// and its descriptor owned together.
#pragma once

#include <libelf.h>

#include <memory>
#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace leakwatch::elf {

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfCloser>;

// elf_version() must be called once before any other libelf call; true when libelf works.
bool libelf_ready();

struct ElfFile {
  UniqueFd fd;
  ElfPtr elf;
};

// Opens `path` read-only (mmap'ed by libelf) and checks that it is an ELF object.
[[nodiscard]] Result<ElfFile> open_elf(const std::string& path);
// The same for an already open descriptor (taken over); `name` is for errors.
[[nodiscard]] Result<ElfFile> open_elf(UniqueFd fd, const std::string& name);

}  // namespace leakwatch::elf
