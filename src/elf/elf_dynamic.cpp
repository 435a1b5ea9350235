#include "elf/elf_dynamic.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "common/fd.h"
#include "elf/elf_file.h"

namespace leakwatch::elf {
namespace {

std::vector<std::string> split(const std::string& s, const char* seps) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find_first_of(seps, i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string dirname_of(const std::string& p) {
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

// $ORIGIN and ${ORIGIN} expand to the directory of the object that carries the path.
std::string expand_origin(std::string dir, const std::string& origin) {
  for (const char* tok : {"${ORIGIN}", "$ORIGIN"}) {
    size_t pos;
    while ((pos = dir.find(tok)) != std::string::npos) dir.replace(pos, std::strlen(tok), origin);
  }
  return dir;
}

std::optional<std::string> search_dirs(const std::string& name, const std::vector<std::string>& dirs,
                                       const std::string& origin) {
  for (const auto& d : dirs) {
    std::string p = expand_origin(d, origin) + "/" + name;
    if (is_file(p)) return p;
  }
  return std::nullopt;
}

}  // namespace

Result<DynamicInfo> read_dynamic_info(const std::string& path) {
  auto o = open_elf(path);
  if (!o) return std::unexpected(o.error());
  Elf* elf = o->elf.get();
  DynamicInfo info;
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return fail("{}: no program headers", path);
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr) continue;
    if (ph.p_type == PT_INTERP) {
      info.has_interp = true;
      Elf_Data* d = elf_getdata_rawchunk(elf, static_cast<int64_t>(ph.p_offset), ph.p_filesz, ELF_T_BYTE);
      if (d && d->d_size > 0) info.interp.assign(static_cast<const char*>(d->d_buf), strnlen(static_cast<const char*>(d->d_buf), d->d_size));
    }
    if (ph.p_type == PT_DYNAMIC) info.has_dynamic = true;
  }
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_DYNAMIC) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || sh.sh_entsize == 0) continue;
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; ++i) {
      GElf_Dyn dyn;
      if (gelf_getdyn(data, static_cast<int>(i), &dyn) == nullptr || dyn.d_tag == DT_NULL) break;
      auto str = [&]() -> std::string {
        const char* s = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
        return s ? s : "";
      };
      switch (dyn.d_tag) {
        case DT_NEEDED: info.needed.push_back(str()); break;
        case DT_SONAME: info.soname = str(); break;
        case DT_RPATH: info.rpath = split(str(), ":"); break;
        case DT_RUNPATH: info.runpath = split(str(), ":"); break;
        default: break;
      }
    }
  }
  return info;
}

Result<std::map<uint64_t, std::string>> read_got_imports(const std::string& path) {
  auto o = open_elf(path);
  if (!o) return std::unexpected(o.error());
  Elf* elf = o->elf.get();
  std::map<uint64_t, std::string> out;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_RELA) continue;
    Elf_Scn* symscn = elf_getscn(elf, sh.sh_link);
    GElf_Shdr symsh;
    if (!symscn || gelf_getshdr(symscn, &symsh) == nullptr) continue;
    Elf_Data* rels = elf_getdata(scn, nullptr);
    Elf_Data* syms = elf_getdata(symscn, nullptr);
    if (!rels || !syms || sh.sh_entsize == 0) continue;
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n; ++i) {
      GElf_Rela r;
      if (gelf_getrela(rels, static_cast<int>(i), &r) == nullptr) continue;
      auto type = GELF_R_TYPE(r.r_info);
      if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
      GElf_Sym sym;
      if (gelf_getsym(syms, static_cast<int>(GELF_R_SYM(r.r_info)), &sym) == nullptr) continue;
      const char* name = elf_strptr(elf, symsh.sh_link, sym.st_name);
      if (name && *name) out[r.r_offset] = name;
    }
  }
  return out;
}

std::map<std::string, std::string> parse_ld_so_cache(std::span<const uint8_t> data) {
  // Layout (glibc elf/cache.c, "new" format): a 48-byte header
  //   char magic[17] "glibc-ld.so.cache"; char version[3] "1.1"; uint32 nlibs;
  //   uint32 len_strings; uint8 flags; uint8 pad[3]; uint32 extension_offset; uint32 unused[3]
  // then nlibs entries of 24 bytes: int32 flags; uint32 key; uint32 value; uint32 osversion;
  // uint64 hwcap.  key and value are string offsets from the start of this header.  Old
  // caches put an "ld.so-1.7.0" table first; the new header follows it.
  std::map<std::string, std::string> out;
  static constexpr char kMagic[] = "glibc-ld.so.cache1.1";
  constexpr size_t kMagicLen = sizeof(kMagic) - 1;
  auto it = std::search(data.begin(), data.end(), kMagic, kMagic + kMagicLen);
  if (it == data.end()) return out;
  size_t base = static_cast<size_t>(it - data.begin());
  auto u32 = [&](size_t off) -> uint32_t {
    uint32_t v = 0;
    if (off + 4 <= data.size()) std::memcpy(&v, data.data() + off, 4);
    return v;
  };
  uint32_t nlibs = u32(base + 20);
  constexpr size_t kHeader = 48, kEntry = 24;
  constexpr int32_t kElfLibc6X8664 = 0x0303;  // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64
  for (uint32_t i = 0; i < nlibs; ++i) {
    size_t e = base + kHeader + i * kEntry;
    if (e + kEntry > data.size()) break;
    int32_t flags = static_cast<int32_t>(u32(e));
    uint32_t key = u32(e + 4), value = u32(e + 8);
    if (flags != kElfLibc6X8664 || base + key >= data.size() || base + value >= data.size()) continue;
    auto str = [&](uint32_t off) {
      const char* s = reinterpret_cast<const char*>(data.data() + base + off);
      return std::string(s, strnlen(s, data.size() - base - off));
    };
    out.try_emplace(str(key), str(value));
  }
  return out;
}

LibrarySearch LibrarySearch::FromEnvironment() {
  LibrarySearch s;
  if (const char* p = std::getenv("LD_LIBRARY_PATH")) s.ld_library_path = split(p, ":;");
  std::ifstream in("/etc/ld.so.cache", std::ios::binary);
  if (in) {
    std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    s.cache = parse_ld_so_cache(buf);
  }
  return s;
}

std::optional<std::string> find_library(const std::string& name, const DynamicInfo& requester,
                                        const std::string& requester_path,
                                        const LibrarySearch& search) {
  if (name.find('/') != std::string::npos) {
    if (is_file(name)) return name;
    return std::nullopt;
  }
  const std::string origin = dirname_of(requester_path);
  if (requester.runpath.empty()) {
    if (auto p = search_dirs(name, requester.rpath, origin)) return p;
    if (auto p = search_dirs(name, search.exe_rpath, search.exe_dir)) return p;
  }
  if (auto p = search_dirs(name, search.ld_library_path, origin)) return p;
  if (auto p = search_dirs(name, requester.runpath, origin)) return p;
  if (auto it = search.cache.find(name); it != search.cache.end() && is_file(it->second))
    return it->second;
  return search_dirs(name, search.default_dirs, origin);
}

std::vector<std::string> split_preload(const std::string& value) { return split(value, ": \t"); }

}  // namespace leakwatch::elf
