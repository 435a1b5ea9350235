#include "elf/elf_file.h"

#include <fcntl.h>

#include <fmt/format.h>

namespace leakwatch::elf {

bool libelf_ready() {
  // A function-local static: initialised once, thread-safely.
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  return ok;
}

Result<ElfFile> open_elf(UniqueFd fd, const std::string& name) {
  if (!libelf_ready()) return fail("libelf: {}", elf_errmsg(-1));
  ElfFile f;
  f.fd = std::move(fd);
  f.elf.reset(elf_begin(f.fd.get(), ELF_C_READ_MMAP, nullptr));
  if (!f.elf || elf_kind(f.elf.get()) != ELF_K_ELF) return fail("{}: not an ELF object", name);
  return f;
}

Result<ElfFile> open_elf(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno(fmt::format("open {}", path));
  return open_elf(std::move(fd), path);
}

}  // namespace leakwatch::elf
