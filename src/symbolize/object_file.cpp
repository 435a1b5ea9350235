#include "symbolize/object_file.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <optional>
#include <vector>

#include "symbolize/dwfl_handles.h"

namespace leakwatch::symbolize {
namespace {

bool same_inode(int fd, uint64_t inode) {
  struct stat st{};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_ino) == inode;
}

bool is_regular(int fd) {
  struct stat st{};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

std::string dirname_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "";
  return path.substr(0, slash);
}

// CRC32 of a whole file, as .gnu_debuglink records it (zlib's polynomial).
bool file_crc32(int fd, uint32_t& out) {
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<unsigned char> buf(1 << 16);
  off_t pos = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    crc = crc32(crc, buf.data(), static_cast<uInt>(n));
    pos += n;
  }
  out = static_cast<uint32_t>(crc);
  return true;
}

bool debug_file_matches(int fd, const std::string& build_id, uint32_t crc) {
  if (build_id.empty()) {
    uint32_t got = 0;
    return file_crc32(fd, got) && got == crc;
  }
  ElfHandle elf(elf_begin(fd, ELF_C_READ_MMAP, nullptr));
  if (!elf) return false;
  const void* bits = nullptr;
  ssize_t len = dwelf_elf_gnu_build_id(elf.get(), &bits);
  return len > 0 &&
         hex_string(static_cast<const unsigned char*>(bits), static_cast<size_t>(len)) == build_id;
}

}  // namespace

std::string hex_string(const unsigned char* bits, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[bits[i] >> 4]);
    out.push_back(kDigits[bits[i] & 0xf]);
  }
  return out;
}

Result<OpenedObject> open_mapped_object(int pid, const MapEntry& entry) {
  const std::string path = entry.file_path();
  const std::string via_root = fmt::format("/proc/{}/root{}", pid, path);
  const std::string via_map_files =
      fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, entry.start, entry.end);
  std::vector<std::string> candidates;
  if (entry.deleted()) {
    candidates = {via_map_files, via_root, path};
  } else {
    candidates = {via_root, via_map_files, path};
  }

  OpenedObject fallback;
  int first_errno = 0;
  for (const std::string& candidate : candidates) {
    UniqueFd fd(::open(candidate.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (first_errno == 0) first_errno = errno;
      continue;
    }
    if (same_inode(fd.get(), entry.inode)) return OpenedObject{std::move(fd), candidate};
    if (!fallback.fd.valid() && !entry.deleted() && is_regular(fd.get())) {
      fallback = OpenedObject{std::move(fd), candidate};
    }
  }
  if (fallback.fd.valid()) return fallback;
  if (first_errno != 0) return fail_errno("cannot open " + entry.path, first_errno);
  return fail("cannot open {}: no file with inode {}", entry.path, entry.inode);
}

Result<uint64_t> compute_load_bias(int fd, const MapEntry& entry) {
  ElfHandle elf(elf_begin(fd, ELF_C_READ_MMAP, nullptr));
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) {
    return fail("{}: not an ELF file", entry.file_path());
  }
  GElf_Ehdr ehdr;
  if (gelf_getehdr(elf.get(), &ehdr) == nullptr) {
    return fail("{}: bad ELF header: {}", entry.file_path(), elf_errmsg(-1));
  }
  if (ehdr.e_type == ET_EXEC) return 0;  // linked at fixed addresses
  size_t phnum = 0;
  if (elf_getphdrnum(elf.get(), &phnum) != 0) {
    return fail("{}: no program headers: {}", entry.file_path(), elf_errmsg(-1));
  }
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // The kernel maps a segment from its page-aligned file offset, so the mapping's offset
  // may be below p_offset; prefer executable segments, since we only map code mappings.
  std::optional<GElf_Phdr> found;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf.get(), static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD) {
      continue;
    }
    uint64_t seg_file_start = ph.p_offset & ~(page - 1);
    if (entry.offset < seg_file_start || entry.offset >= ph.p_offset + ph.p_filesz) continue;
    if (!found || ((ph.p_flags & PF_X) && !(found->p_flags & PF_X))) found = ph;
  }
  if (!found) {
    return fail("{}: no PT_LOAD segment holds file offset {:#x}", entry.file_path(),
                entry.offset);
  }
  // File offset O sits at vaddr p_vaddr + (O - p_offset); unsigned wrap-around is fine,
  // the difference is exact modulo 2^64.
  uint64_t vaddr_at_start = found->p_vaddr + (entry.offset - found->p_offset);
  return entry.start - vaddr_at_start;
}

UniqueFd find_debuglink_file(const std::string& object_path, const std::string& root_prefix,
                             const std::string& debuglink, uint32_t crc,
                             const std::string& build_id, std::string& found_path) {
  if (debuglink.empty() || debuglink.find('/') != std::string::npos) return UniqueFd();
  const std::string dir = dirname_of(object_path);
  std::vector<std::string> roots;
  if (!root_prefix.empty()) roots.push_back(root_prefix);
  roots.push_back("");
  for (const std::string& root : roots) {
    for (const std::string& candidate :
         {root + dir + "/" + debuglink, root + dir + "/.debug/" + debuglink,
          root + "/usr/lib/debug" + dir + "/" + debuglink}) {
      if (candidate == root + object_path) continue;  // the object names itself
      UniqueFd fd(::open(candidate.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid() || !is_regular(fd.get())) continue;
      if (debug_file_matches(fd.get(), build_id, crc)) {
        found_path = candidate;
        return fd;
      }
    }
  }
  return UniqueFd();
}

}  // namespace leakwatch::symbolize
