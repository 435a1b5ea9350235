// Helpers shared by the unwinder tests.
#pragma once

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "common/fd.h"

namespace leakwatch::unwind {

// Function symbols of an ELF file (.symtab), read with libelf: the tests name frames
// without the code under test.
struct ElfSymbols {
  std::map<uint64_t, std::pair<uint64_t, std::string>> funcs;  // value -> (size, name)
  explicit ElfSymbols(const std::string& path) {
    elf_version(EV_CURRENT);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    Elf* elf = elf_begin(fd.get(), ELF_C_READ, nullptr);
    for (Elf_Scn* scn = nullptr; elf != nullptr && (scn = elf_nextscn(elf, scn)) != nullptr;) {
      GElf_Shdr sh;
      if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_SYMTAB) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      for (size_t i = 0; data != nullptr && i < sh.sh_size / sh.sh_entsize; ++i) {
        GElf_Sym sym;
        if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_value == 0) continue;
        funcs[sym.st_value] = {sym.st_size, elf_strptr(elf, sh.sh_link, sym.st_name)};
      }
    }
    if (elf != nullptr) elf_end(elf);
  }
  uint64_t address_of(const std::string& name) const {
    for (const auto& [value, f] : funcs) {
      if (f.second == name) return value;
    }
    return 0;
  }
  std::string function_at(uint64_t vaddr) const {
    auto it = funcs.upper_bound(vaddr);
    if (it == funcs.begin()) return "";
    --it;
    return vaddr < it->first + std::max<uint64_t>(it->second.first, 1) ? it->second.second : "";
  }
};

}  // namespace leakwatch::unwind
