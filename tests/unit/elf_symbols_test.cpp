// ElfObject against real objects: this machine's libc (a shared object), and the place_pie
// / place_nopie fixtures (PIE and non-PIE executables).  Expected values are computed here
// independently of libelf, by reading the ELF structures straight from the file with
// <elf.h>, and checked against binutils (readelf) and against a running process.
#include "elf/elf_symbols.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace leakwatch::elf {
namespace {

const std::string kLibc = "/lib/x86_64-linux-gnu/libc.so.6";
const std::string kPie = std::string(LEAKWATCH_FIXTURE_DIR) + "/place_pie";
const std::string kNoPie = std::string(LEAKWATCH_FIXTURE_DIR) + "/place_nopie";

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// What `nm` would print, computed by hand from the raw bytes of a 64-bit little-endian ELF:
// the symbol's value and size from the given table, and its file offset through the
// program headers.
struct RawSymbol {
  uint64_t value = 0, size = 0, file_offset = 0;
};

std::optional<RawSymbol> raw_lookup(const std::vector<uint8_t>& f, const std::string& want,
                                    uint32_t table_type) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, f.data(), sizeof eh);
  auto shdr = [&](size_t i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, f.data() + eh.e_shoff + i * eh.e_shentsize, sizeof sh);
    return sh;
  };
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    const Elf64_Shdr sh = shdr(i);
    if (sh.sh_type != table_type) continue;
    const Elf64_Shdr strtab = shdr(sh.sh_link);
    for (size_t k = 1; k < sh.sh_size / sizeof(Elf64_Sym); ++k) {
      Elf64_Sym sym;
      std::memcpy(&sym, f.data() + sh.sh_offset + k * sizeof sym, sizeof sym);
      if (sym.st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym.st_info) != STT_FUNC) continue;
      const char* name = reinterpret_cast<const char*>(f.data() + strtab.sh_offset + sym.st_name);
      if (want != name) continue;
      for (size_t p = 0; p < eh.e_phnum; ++p) {
        Elf64_Phdr ph;
        std::memcpy(&ph, f.data() + eh.e_phoff + p * eh.e_phentsize, sizeof ph);
        if (ph.p_type == PT_LOAD && sym.st_value >= ph.p_vaddr &&
            sym.st_value < ph.p_vaddr + ph.p_filesz) {
          return RawSymbol{sym.st_value, sym.st_size, sym.st_value - ph.p_vaddr + ph.p_offset};
        }
      }
    }
  }
  return std::nullopt;
}

std::string readelf_build_id(const std::string& path) {
  const std::string out = run("readelf -n " + path + " 2>/dev/null");
  const auto at = out.find("Build ID: ");
  if (at == std::string::npos) return "";
  const auto start = at + std::strlen("Build ID: ");
  return out.substr(start, out.find_first_of(" \n", start) - start);
}

TEST(ElfSymbols, LibcMallocAndFreeHaveTheFileOffsetsComputedFromTheRawFile) {
  auto obj = ElfObject::Open(kLibc);
  ASSERT_TRUE(obj) << obj.error().message;
  EXPECT_TRUE(obj->is_pie_or_shared());
  const auto bytes = slurp(kLibc);
  for (const std::string name : {"malloc", "free", "calloc", "realloc", "posix_memalign"}) {
    SCOPED_TRACE(name);
    auto sym = obj->find(name);
    ASSERT_TRUE(sym);
    auto raw = raw_lookup(bytes, name, SHT_DYNSYM);
    ASSERT_TRUE(raw);
    EXPECT_EQ(sym->name, name);
    EXPECT_EQ(sym->value, raw->value);
    EXPECT_EQ(sym->size, raw->size);
    EXPECT_EQ(sym->file_offset, raw->file_offset);
    EXPECT_TRUE(sym->dynamic);
    EXPECT_FALSE(sym->ifunc);
    EXPECT_EQ(sym->version, "GLIBC_2.2.5");
    EXPECT_TRUE(sym->default_version);
    // read_code goes through the same mapping: it returns the bytes at file_offset.
    auto code = obj->read_code(sym->value, 32);
    ASSERT_TRUE(code) << code.error().message;
    EXPECT_EQ(*code, std::vector<uint8_t>(bytes.begin() + raw->file_offset,
                                          bytes.begin() + raw->file_offset + 32));
  }
}

TEST(ElfSymbols, LibcValuesAgreeWithNm) {
  auto obj = ElfObject::Open(kLibc);
  ASSERT_TRUE(obj) << obj.error().message;
  // "0000000000098930 T malloc@@GLIBC_2.2.5"
  const std::string nm = run("nm -D --defined-only " + kLibc + " 2>/dev/null");
  ASSERT_FALSE(nm.empty()) << "nm (binutils) is needed for this test";
  for (const std::string name : {"malloc", "free", "mmap", "munmap"}) {
    SCOPED_TRACE(name);
    const auto at = nm.find(" " + name + "@@");
    ASSERT_NE(at, std::string::npos);
    const auto line_start = nm.rfind('\n', at) + 1;
    const uint64_t nm_value = std::stoull(nm.substr(line_start, at - line_start), nullptr, 16);
    auto sym = obj->find(name);
    ASSERT_TRUE(sym);
    EXPECT_EQ(sym->value, nm_value);
  }
}

TEST(ElfSymbols, LibcKeepsAliasesAndStripsVersions) {
  auto obj = ElfObject::Open(kLibc);
  ASSERT_TRUE(obj) << obj.error().message;
  auto malloc_sym = obj->find("malloc");
  auto libc_malloc = obj->find("__libc_malloc");
  ASSERT_TRUE(malloc_sym);
  ASSERT_TRUE(libc_malloc);
  EXPECT_EQ(malloc_sym->value, libc_malloc->value);
  const auto names = obj->names_at(malloc_sym->value);
  EXPECT_NE(std::find(names.begin(), names.end(), "malloc"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "__libc_malloc"), names.end());

  size_t memcpy_count = 0;
  for (const auto& s : obj->symbols()) {
    EXPECT_EQ(s.name.find('@'), std::string::npos) << s.name;
    if (s.name == "memcpy") ++memcpy_count;
  }
  // glibc exports memcpy twice: the old GLIBC_2.2.5 one (hidden, memmove semantics) and
  // the default GLIBC_2.14 one.  find() must return the default.
  auto memcpy_sym = obj->find("memcpy");
  ASSERT_TRUE(memcpy_sym);
  EXPECT_TRUE(memcpy_sym->default_version);
  if (memcpy_count == 2) {
    EXPECT_EQ(memcpy_sym->version, "GLIBC_2.14");
  }
  // memcpy is an IFUNC: the symbol is its resolver.
  EXPECT_TRUE(memcpy_sym->ifunc);
}

TEST(ElfSymbols, LibcBuildIdMatchesReadelf) {
  auto obj = ElfObject::Open(kLibc);
  ASSERT_TRUE(obj) << obj.error().message;
  const std::string expected = readelf_build_id(kLibc);
  ASSERT_EQ(expected.size(), 40u) << "readelf -n gave no build id";
  EXPECT_EQ(obj->build_id(), expected);
}

// Runs the fixture with "dump": "0x55d0c0de1139 f30f1efa5548..." -> address and bytes.
std::pair<uint64_t, std::string> dump_fixture(const std::string& path) {
  const std::string out = run(path + " dump");
  const auto space = out.find(' ');
  if (space == std::string::npos) return {0, ""};
  return {std::stoull(out.substr(0, space), nullptr, 16),
          out.substr(space + 1, out.find('\n') - space - 1)};
}

std::string hex(const std::vector<uint8_t>& v) {
  std::string s;
  char b[3];
  for (uint8_t c : v) {
    std::snprintf(b, sizeof b, "%02x", c);
    s += b;
  }
  return s;
}

void check_fixture(const std::string& path, bool pie) {
  auto obj = ElfObject::Open(path);
  ASSERT_TRUE(obj) << obj.error().message;
  EXPECT_EQ(obj->is_pie_or_shared(), pie);
  const auto bytes = slurp(path);

  auto sym = obj->find("place_marker");
  ASSERT_TRUE(sym);
  auto raw = raw_lookup(bytes, "place_marker", SHT_SYMTAB);
  ASSERT_TRUE(raw);
  EXPECT_EQ(sym->value, raw->value);
  EXPECT_EQ(sym->size, raw->size);
  EXPECT_EQ(sym->file_offset, raw->file_offset);
  EXPECT_GT(sym->size, 0u);
  if (!pie) {
    // Non-PIE: absolute addresses, the first PT_LOAD at 0x400000 maps file offset 0.
    EXPECT_GE(sym->value, 0x400000u);
    EXPECT_EQ(sym->file_offset, sym->value - 0x400000u);
  } else {
    EXPECT_LT(sym->value, 0x400000u);
  }

  // The static helper is local and only in .symtab.
  auto helper = obj->find("place_static_helper");
  ASSERT_TRUE(helper);
  EXPECT_TRUE(helper->local);
  EXPECT_FALSE(helper->dynamic);

  // The code that runs is the code at file_offset.
  auto [addr, runtime_hex] = dump_fixture(path);
  ASSERT_EQ(runtime_hex.size(), 32u) << "fixture printed nothing usable";
  auto code = obj->read_code(sym->value, 16);
  ASSERT_TRUE(code) << code.error().message;
  EXPECT_EQ(hex(*code), runtime_hex);
  EXPECT_EQ(hex(std::vector<uint8_t>(bytes.begin() + sym->file_offset,
                                     bytes.begin() + sym->file_offset + 16)),
            runtime_hex);
  if (!pie) {
    EXPECT_EQ(addr, sym->value);
  } else {
    EXPECT_EQ((addr - sym->value) % 4096, 0u) << "load bias is not page aligned";
  }

  EXPECT_EQ(obj->build_id(), readelf_build_id(path));
  EXPECT_EQ(obj->build_id().size(), 40u);
}

TEST(ElfSymbols, PieExecutable) { check_fixture(kPie, true); }
TEST(ElfSymbols, NonPieExecutable) { check_fixture(kNoPie, false); }

TEST(ElfSymbols, UnknownNameIsNotFound) {
  auto obj = ElfObject::Open(kLibc);
  ASSERT_TRUE(obj) << obj.error().message;
  EXPECT_FALSE(obj->find("no_such_function_in_libc"));
  EXPECT_FALSE(obj->find(""));
}

TEST(ElfSymbols, ReadCodeOutsideTheFileIsAnError) {
  auto obj = ElfObject::Open(kNoPie);
  ASSERT_TRUE(obj) << obj.error().message;
  EXPECT_FALSE(obj->read_code(0x10, 4));  // below the first segment
  auto sym = obj->find("place_marker");
  ASSERT_TRUE(sym);
  EXPECT_FALSE(obj->read_code(sym->value, 1ull << 40));  // past the segment's end
  EXPECT_FALSE(obj->file_offset_of(0x10));
}

TEST(ElfSymbols, OpenErrorsNameThePath) {
  auto missing = ElfObject::Open("/nonexistent/libnothing.so");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/libnothing.so"), std::string::npos);
  EXPECT_EQ(missing.error().errnum, ENOENT);

  const std::string text = std::string(LEAKWATCH_SOURCE_DIR) + "/CMakeLists.txt";
  auto not_elf = ElfObject::Open(text);
  ASSERT_FALSE(not_elf);
  EXPECT_NE(not_elf.error().message.find(text), std::string::npos);
}

TEST(ElfSymbols, ObjectIsMovable) {
  auto obj = ElfObject::Open(kLibc);
  ASSERT_TRUE(obj) << obj.error().message;
  ElfObject moved = std::move(*obj);
  auto sym = moved.find("free");
  ASSERT_TRUE(sym);
  EXPECT_TRUE(moved.read_code(sym->value, 4));  // the descriptor moved with it
}

}  // namespace
}  // namespace leakwatch::elf
