#include "elf/elf_symbols.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <utility>

#include <fmt/format.h>

#include "elf/elf_file.h"

namespace leakwatch::elf {
namespace {

std::string elf_error(const std::string& path, const char* what) {
  return fmt::format("{}: {}: {}", path, what, elf_errmsg(-1));
}

// Version index -> version name, from .gnu.version_d (definitions only: we index defined
// symbols).  Index 1 is the object's base name, which is not a version a symbol carries.
std::map<uint16_t, std::string> read_version_definitions(Elf* elf, Elf_Scn* verdef_scn) {
  std::map<uint16_t, std::string> out;
  if (verdef_scn == nullptr) return out;
  GElf_Shdr shdr;
  Elf_Data* data = elf_getdata(verdef_scn, nullptr);
  if (gelf_getshdr(verdef_scn, &shdr) == nullptr || data == nullptr) return out;
  size_t off = 0;
  for (size_t n = 0; n < shdr.sh_info || shdr.sh_info == 0; ++n) {
    GElf_Verdef vd;
    if (gelf_getverdef(data, static_cast<int>(off), &vd) == nullptr) break;
    GElf_Verdaux aux;
    if ((vd.vd_flags & VER_FLG_BASE) == 0 &&
        gelf_getverdaux(data, static_cast<int>(off + vd.vd_aux), &aux) != nullptr) {
      const char* name = elf_strptr(elf, shdr.sh_link, aux.vda_name);
      if (name != nullptr) out[vd.vd_ndx] = name;
    }
    if (vd.vd_next == 0) break;
    off += vd.vd_next;
  }
  return out;
}

// Reads the NT_GNU_BUILD_ID note from the PT_NOTE segments (present even in stripped
// objects, which may lack section headers).
std::string read_build_id(Elf* elf, size_t phnum) {
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_NOTE) continue;
    Elf_Data* data = elf_getdata_rawchunk(elf, static_cast<int64_t>(ph.p_offset), ph.p_filesz,
                                          ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
    if (data == nullptr) continue;
    size_t off = 0;
    GElf_Nhdr nh;
    size_t name_off = 0, desc_off = 0;
    while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
      const auto* base = static_cast<const uint8_t*>(data->d_buf);
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
          std::string_view(reinterpret_cast<const char*>(base + name_off), 3) == "GNU") {
        std::string hex;
        for (size_t k = 0; k < nh.n_descsz; ++k) hex += fmt::format("{:02x}", base[desc_off + k]);
        return hex;
      }
    }
  }
  return "";
}

// Higher is preferred by find(): exported, then default version, then global binding.
int rank(const ElfSymbol& s) {
  return (s.dynamic ? 4 : 0) + (s.default_version ? 2 : 0) + (s.local ? 0 : 1);
}

}  // namespace

Result<ElfObject> ElfObject::Open(const std::string& path) {
  auto file = open_elf(path);
  if (!file) return std::unexpected(file.error());
  UniqueFd fd = std::move(file->fd);
  ElfPtr elf = std::move(file->elf);
  GElf_Ehdr eh;
  if (gelf_getehdr(elf.get(), &eh) == nullptr) return fail("{}", elf_error(path, "ELF header"));
  if (eh.e_type != ET_DYN && eh.e_type != ET_EXEC)
    return fail("{}: not an executable or shared object (e_type {})", path, eh.e_type);

  ElfObject obj;
  obj.path_ = path;
  obj.dyn_ = eh.e_type == ET_DYN;

  size_t phnum = 0;
  if (elf_getphdrnum(elf.get(), &phnum) != 0) return fail("{}", elf_error(path, "program headers"));
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf.get(), static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD)
      continue;
    obj.segments_.push_back(Segment{ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, ph.p_align,
                                    (ph.p_flags & PF_X) != 0});
  }
  if (obj.segments_.empty()) return fail("{}: no PT_LOAD segment", path);
  obj.build_id_ = read_build_id(elf.get(), phnum);

  // Find the symbol tables and the version sections that go with .dynsym.
  Elf_Scn* dynsym = nullptr;
  Elf_Scn* symtab = nullptr;
  Elf_Scn* versym = nullptr;
  Elf_Scn* verdef = nullptr;
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn != nullptr;
       scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr) continue;
    switch (sh.sh_type) {
      case SHT_DYNSYM: dynsym = scn; break;
      case SHT_SYMTAB: symtab = scn; break;
      case SHT_GNU_versym: versym = scn; break;
      case SHT_GNU_verdef: verdef = scn; break;
      default: break;
    }
  }
  const auto versions = read_version_definitions(elf.get(), verdef);
  Elf_Data* versym_data = versym != nullptr ? elf_getdata(versym, nullptr) : nullptr;

  std::map<std::pair<std::string, uint64_t>, size_t> seen;  // (name, value) -> index
  auto add = [&](ElfSymbol s) {
    auto [it, inserted] = seen.try_emplace({s.name, s.value}, obj.symbols_.size());
    if (inserted) {
      obj.symbols_.push_back(std::move(s));
    } else if (rank(s) > rank(obj.symbols_[it->second])) {
      obj.symbols_[it->second] = std::move(s);
    }
  };

  for (Elf_Scn* scn : {dynsym, symtab}) {
    if (scn == nullptr) continue;
    GElf_Shdr sh;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (gelf_getshdr(scn, &sh) == nullptr || data == nullptr || sh.sh_entsize == 0) continue;
    const bool is_dyn = scn == dynsym;
    const size_t count = sh.sh_size / sh.sh_entsize;
    for (size_t i = 1; i < count; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      const int type = GELF_ST_TYPE(sym.st_info);
      if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
      const char* raw = elf_strptr(elf.get(), sh.sh_link, sym.st_name);
      if (type == STT_OBJECT && is_dyn && raw != nullptr) {
        // Exported data (what a reader of the running process looks up by name).
        ElfSymbol d;
        d.name = raw;
        d.value = sym.st_value;
        d.size = sym.st_size;
        d.dynamic = true;
        obj.data_symbols_.try_emplace(d.name, std::move(d));
        continue;
      }
      if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
      if (raw == nullptr || *raw == '\0') continue;
      auto offset = obj.file_offset_of(sym.st_value);
      if (!offset) continue;  // not backed by the file: nothing to probe

      ElfSymbol s;
      s.value = sym.st_value;
      s.size = sym.st_size;
      s.file_offset = *offset;
      s.dynamic = is_dyn;
      s.local = GELF_ST_BIND(sym.st_info) == STB_LOCAL;
      s.ifunc = type == STT_GNU_IFUNC;
      // .symtab may spell versions into the name (from .symver): "memcpy@GLIBC_2.2.5"
      // (hidden) or "memcpy@@GLIBC_2.14" (default).
      std::string name = raw;
      if (auto at = name.find('@'); at != std::string::npos) {
        const bool dflt = name.compare(at, 2, "@@") == 0;
        s.version = name.substr(at + (dflt ? 2 : 1));
        s.default_version = dflt;
        name.resize(at);
      }
      s.name = std::move(name);
      if (is_dyn && versym_data != nullptr) {
        GElf_Versym vs;
        if (gelf_getversym(versym_data, static_cast<int>(i), &vs) != nullptr) {
          s.default_version = (vs & 0x8000) == 0;
          if (auto v = versions.find(vs & 0x7fff); v != versions.end()) s.version = v->second;
        }
      }
      add(std::move(s));
    }
  }

  for (size_t i = 0; i < obj.symbols_.size(); ++i) {
    auto [it, inserted] = obj.best_by_name_.try_emplace(obj.symbols_[i].name, i);
    if (!inserted && rank(obj.symbols_[i]) > rank(obj.symbols_[it->second])) it->second = i;
  }
  obj.fd_ = std::move(fd);
  return obj;
}

std::optional<ElfSymbol> ElfObject::find(const std::string& name) const {
  auto it = best_by_name_.find(name);
  if (it == best_by_name_.end()) return std::nullopt;
  return symbols_[it->second];
}

std::vector<std::string> ElfObject::names_at(uint64_t vaddr) const {
  std::vector<std::string> out;
  for (const auto& s : symbols_) {
    if (s.value == vaddr) out.push_back(s.name);
  }
  return out;
}

std::optional<ElfSymbol> ElfObject::find_data(const std::string& name) const {
  auto it = data_symbols_.find(name);
  if (it == data_symbols_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint64_t> ElfObject::first_load_vaddr() const {
  if (segments_.empty()) return std::nullopt;
  const Segment& s = segments_.front();
  return s.vaddr & ~((s.align ? s.align : 4096) - 1);
}

std::optional<uint64_t> ElfObject::file_offset_of(uint64_t vaddr) const {
  for (const auto& seg : segments_) {
    if (vaddr >= seg.vaddr && vaddr - seg.vaddr < seg.filesz) return vaddr - seg.vaddr + seg.offset;
  }
  return std::nullopt;
}

Result<std::vector<uint8_t>> ElfObject::read_code(uint64_t vaddr, uint64_t len) const {
  for (const auto& seg : segments_) {
    if (vaddr < seg.vaddr || vaddr - seg.vaddr >= seg.filesz) continue;
    if (len > seg.filesz - (vaddr - seg.vaddr))
      return fail("{}: {} bytes at {:#x} run past the end of the file-backed segment", path_,
                  len, vaddr);
    std::vector<uint8_t> buf(len);
    uint64_t done = 0;
    const uint64_t start = vaddr - seg.vaddr + seg.offset;
    while (done < len) {
      ssize_t n = ::pread(fd_.get(), buf.data() + done, len - done,
                          static_cast<off_t>(start + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno(fmt::format("read {} at offset {:#x}", path_, start + done));
      if (n == 0) return fail("{}: file ends at offset {:#x}", path_, start + done);
      done += static_cast<uint64_t>(n);
    }
    return buf;
  }
  return fail("{}: address {:#x} is not in a file-backed PT_LOAD segment", path_, vaddr);
}

}  // namespace leakwatch::elf
