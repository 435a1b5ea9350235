// Reading an ELF object's function symbols and turning them into uprobe file offsets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace leakwatch::probe {

struct ElfSymbol {
  std::string name;        // without version suffix ("free", not "free@@GLIBC_2.2.5")
  uint64_t value = 0;      // st_value (virtual address)
  uint64_t size = 0;       // st_size
  uint64_t file_offset = 0;// st_value - p_vaddr + p_offset of the PT_LOAD segment holding it
  bool dynamic = false;    // from .dynsym (exported) rather than .symtab
};

class ElfObject {
 public:
  // Opens the object and indexes its FUNC symbols (.dynsym and .symtab, also IFUNC).
  [[nodiscard]] static Result<ElfObject> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // Looks a function up by exact name (version suffix ignored).  Prefers .dynsym.
  std::optional<ElfSymbol> find(const std::string& name) const;
  // Reads `len` bytes of code at virtual address `vaddr` (from the file).
  [[nodiscard]] Result<std::vector<uint8_t>> read_code(uint64_t vaddr, uint64_t len) const;
  const std::string& build_id() const { return build_id_; }
  bool is_pie_or_shared() const { return dyn_; }
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }

 private:
  struct Segment { uint64_t vaddr, memsz, offset, filesz; bool exec; };
  std::string path_;
  std::string build_id_;
  bool dyn_ = false;
  std::vector<ElfSymbol> symbols_;
  std::vector<Segment> segments_;
  friend Result<ElfObject> open_elf_object(const std::string& path);
};

}  // namespace leakwatch::probe
