// Reading an ELF object's function symbols and turning them into uprobe file offsets.
//
// A uprobe is attached by (file, offset in the file), not by virtual address, so every
// symbol carries `file_offset`: st_value - p_vaddr + p_offset of the PT_LOAD segment that
// holds it.  That is the same formula for shared objects, PIE and non-PIE executables.
//
// Thread-safety: an ElfObject is immutable after Open(); its const methods may be called
// from several threads (read_code uses pread on a descriptor it owns).  Move-only: it owns
// that descriptor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace leakwatch::elf {

struct ElfSymbol {
  std::string name;        // without version suffix ("free", not "free@@GLIBC_2.2.5")
  uint64_t value = 0;      // st_value (virtual address)
  uint64_t size = 0;       // st_size
  uint64_t file_offset = 0;// st_value - p_vaddr + p_offset of the PT_LOAD segment holding it
  bool dynamic = false;    // from .dynsym (exported) rather than .symtab
  // Symbol version from .gnu.version_d ("GLIBC_2.2.5"), "" when unversioned.  A library can
  // export one name under several versions (memcpy@GLIBC_2.2.5 and memcpy@@GLIBC_2.14); the
  // default one ("@@") is what a newly linked program binds to.
  std::string version;
  bool default_version = true;  // false for a hidden (non-default, "@") version
  bool local = false;      // STB_LOCAL: a static function, only in .symtab
  // STT_GNU_IFUNC: `value` is the resolver that picks an implementation at load time, not
  // the implementation itself, so probing it catches only the resolution.
  bool ifunc = false;
};

class ElfObject {
 public:
  // Opens the object and indexes its FUNC symbols (.dynsym and .symtab, also IFUNC).
  // Accepts shared objects and executables (ET_DYN, ET_EXEC); relocatable objects are
  // refused because their st_value is not an address.
  [[nodiscard]] static Result<ElfObject> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // Looks a function up by exact name (version suffix ignored).  Prefers .dynsym, then the
  // default version, then global over local binding.
  std::optional<ElfSymbol> find(const std::string& name) const;
  // Every indexed name whose symbol starts at `vaddr` (aliases: malloc, __libc_malloc, ...).
  std::vector<std::string> names_at(uint64_t vaddr) const;
  // The file offset that holds virtual address `vaddr`, if a PT_LOAD segment maps it from
  // the file (not in the zero-filled tail of a segment).
  std::optional<uint64_t> file_offset_of(uint64_t vaddr) const;
  // Reads `len` bytes of code at virtual address `vaddr` (from the file).  The whole range
  // must lie in the file-backed part of one PT_LOAD segment.
  [[nodiscard]] Result<std::vector<uint8_t>> read_code(uint64_t vaddr, uint64_t len) const;
  // An exported data object (.dynsym STT_OBJECT) by name, e.g. a variable a reader finds in
  // the running process at load base + value.
  std::optional<ElfSymbol> find_data(const std::string& name) const;
  // The page-aligned virtual address of the first PT_LOAD segment: what the object's first
  // mapping (file offset 0) starts at, less the load base.
  std::optional<uint64_t> first_load_vaddr() const;
  // NT_GNU_BUILD_ID as lowercase hex, "" when the object has none.
  const std::string& build_id() const { return build_id_; }
  bool is_pie_or_shared() const { return dyn_; }
  // Unique (name, address) pairs; a symbol present in both .dynsym and .symtab is listed
  // once, as dynamic.
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }

 private:
  struct Segment {
    uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0, align = 0;
    bool exec = false;
  };
  ElfObject() = default;

  std::string path_;
  std::string build_id_;
  bool dyn_ = false;
  std::vector<ElfSymbol> symbols_;
  std::vector<Segment> segments_;
  std::unordered_map<std::string, size_t> best_by_name_;  // name -> index in symbols_
  std::unordered_map<std::string, ElfSymbol> data_symbols_;
  UniqueFd fd_;
};

}  // namespace leakwatch::elf
