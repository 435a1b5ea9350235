#include "unwind/object_cfi.h"

#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "common/log.h"
#include "elf/elf_file.h"
#include "symbolize/object_file.h"

namespace leakwatch::unwind {

Result<std::unique_ptr<ObjectCfi>> ObjectCfi::Open(UniqueFd fd, std::string path,
                                                   std::string root_prefix,
                                                   bool use_debug_frame) {
  if (!elf::libelf_ready()) return fail("libelf: {}", elf_errmsg(-1));
  std::unique_ptr<ObjectCfi> obj(new ObjectCfi());
  obj->elf_ = elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr);
  if (obj->elf_ == nullptr || elf_kind(obj->elf_) != ELF_K_ELF) {
    return fail("{}: not an ELF file", path);
  }
  GElf_Ehdr ehdr;
  if (gelf_getehdr(obj->elf_, &ehdr) == nullptr) {
    return fail("{}: bad ELF header: {}", path, elf_errmsg(-1));
  }
  if (ehdr.e_machine != EM_X86_64) return fail("{}: not an x86-64 object", path);
  const void* bits = nullptr;
  ssize_t len = dwelf_elf_gnu_build_id(obj->elf_, &bits);
  if (len > 0) {
    obj->build_id_ = symbolize::hex_string(static_cast<const unsigned char*>(bits),
                                           static_cast<size_t>(len));
    obj->cache_key_ = "b:" + obj->build_id_;
  } else {
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat " + path);
    obj->cache_key_ = fmt::format("f:{}:{}:{}:{}.{}", st.st_dev, st.st_ino, st.st_size,
                                  st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  }
  obj->fd_ = std::move(fd);
  obj->path_ = std::move(path);
  obj->root_prefix_ = std::move(root_prefix);
  obj->use_debug_frame_ = use_debug_frame;
  return obj;
}

ObjectCfi::~ObjectCfi() {
  if (eh_cfi_ != nullptr) dwarf_cfi_end(eh_cfi_);
  if (own_dwarf_ != nullptr) dwarf_end(own_dwarf_);
  if (debug_dwarf_ != nullptr) dwarf_end(debug_dwarf_);
  if (debug_elf_ != nullptr) elf_end(debug_elf_);
  if (elf_ != nullptr) elf_end(elf_);
}

bool ObjectCfi::has_eh_frame() {
  load_eh_frame();
  return eh_cfi_ != nullptr;
}

void ObjectCfi::load_eh_frame() {
  if (eh_loaded_) return;
  eh_loaded_ = true;
  eh_cfi_ = dwarf_getcfi_elf(elf_);
  if (eh_cfi_ == nullptr) log::debug("unwind: {} has no .eh_frame: {}", path_, dwarf_errmsg(-1));
}

// .debug_frame is only needed for code without .eh_frame entries (built with
// -fno-asynchronous-unwind-tables, some assembly), so it is looked for on the first miss.
void ObjectCfi::load_debug_frame() {
  if (debug_loaded_ || !use_debug_frame_) return;
  debug_loaded_ = true;
  own_dwarf_ = dwarf_begin_elf(elf_, DWARF_C_READ, nullptr);
  if (own_dwarf_ != nullptr) {
    debug_cfi_ = dwarf_getcfi(own_dwarf_);
    if (debug_cfi_ != nullptr) return;
  }
  // A separate debug file: by build id, then by .gnu_debuglink.
  UniqueFd fd;
  std::string found;
  if (!build_id_.empty() && build_id_.size() > 2) {
    const std::string rel = "/usr/lib/debug/.build-id/" + build_id_.substr(0, 2) + "/" +
                            build_id_.substr(2) + ".debug";
    std::vector<std::string> candidates;
    if (!root_prefix_.empty()) candidates.push_back(root_prefix_ + rel);
    candidates.push_back(rel);
    for (const std::string& candidate : candidates) {
      fd.reset(::open(candidate.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.valid()) {
        found = candidate;
        break;
      }
    }
  }
  if (!fd.valid()) {
    GElf_Word crc = 0;
    const char* link = dwelf_elf_gnu_debuglink(elf_, &crc);
    if (link != nullptr) {
      fd = symbolize::find_debuglink_file(path_, root_prefix_, link, crc, build_id_, found);
    }
  }
  if (!fd.valid()) return;
  debug_elf_ = elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr);
  if (debug_elf_ == nullptr) return;
  debug_dwarf_ = dwarf_begin_elf(debug_elf_, DWARF_C_READ, nullptr);
  if (debug_dwarf_ == nullptr) return;
  debug_cfi_ = dwarf_getcfi(debug_dwarf_);
  debug_fd_ = std::move(fd);
  if (debug_cfi_ != nullptr) log::debug("unwind: {}: .debug_frame from {}", path_, found);
}

const UnwindRow* ObjectCfi::insert(Result<UnwindRow> row, std::string* error) {
  if (!row) {
    if (error != nullptr) *error = fmt::format("{}: {}", path_, row.error().message);
    return nullptr;
  }
  if (rows_.size() >= kMaxRows) rows_.clear();
  auto [it, inserted] = rows_.insert_or_assign(row->start, std::move(*row));
  (void)inserted;
  return &it->second;
}

const UnwindRow* ObjectCfi::row_for(uint64_t vaddr, std::string* error) {
  ++stats_.row_lookups;
  // The row starting at or below vaddr, if its range covers vaddr.
  auto it = rows_.upper_bound(vaddr);
  if (it != rows_.begin()) {
    --it;
    if (vaddr >= it->second.start && vaddr < it->second.end) {
      ++stats_.row_cache_hits;
      return &it->second;
    }
  }
  load_eh_frame();
  Dwarf_Frame* frame = nullptr;
  if (eh_cfi_ != nullptr && dwarf_cfi_addrframe(eh_cfi_, vaddr, &frame) == 0) {
    auto row = row_from_frame(frame);
    std::free(frame);
    ++stats_.rows_from_eh_frame;
    return insert(std::move(row), error);
  }
  std::string eh_error = eh_cfi_ == nullptr ? "no .eh_frame" : dwarf_errmsg(-1);
  load_debug_frame();
  if (debug_cfi_ != nullptr && dwarf_cfi_addrframe(debug_cfi_, vaddr, &frame) == 0) {
    auto row = row_from_frame(frame);
    std::free(frame);
    ++stats_.rows_from_debug_frame;
    return insert(std::move(row), error);
  }
  ++stats_.lookups_without_cfi;
  if (error != nullptr) {
    *error = fmt::format("no CFI for {:#x} in {} (.eh_frame: {}{})", vaddr, path_, eh_error,
                         debug_cfi_ != nullptr ? "; .debug_frame: no entry" : "");
  }
  return nullptr;
}

bool ObjectCfi::read_file(uint64_t offset, void* out, size_t size) const {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = ::pread(fd_.get(), p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return true;
}

Result<std::shared_ptr<ObjectCfi>> CfiCache::get(UniqueFd fd, const std::string& path,
                                                 const std::string& root_prefix,
                                                 bool use_debug_frame) {
  auto opened = ObjectCfi::Open(std::move(fd), path, root_prefix, use_debug_frame);
  if (!opened) return std::unexpected(opened.error());
  const std::string& key = (*opened)->cache_key();
  if (auto it = objects_.find(key); it != objects_.end()) {
    ++hits_;
    return it->second;  // the new handle (and its fd) is closed here
  }
  ++loads_;
  std::shared_ptr<ObjectCfi> obj(std::move(*opened));
  objects_.emplace(obj->cache_key(), obj);
  order_.emplace(seq_++, obj->cache_key());
  trim();
  return obj;
}

void CfiCache::trim() {
  size_t idle = 0;
  for (const auto& [key, obj] : objects_) idle += obj.use_count() == 1 ? 1 : 0;
  for (auto it = order_.begin(); idle > max_idle_ && it != order_.end();) {
    auto obj = objects_.find(it->second);
    if (obj != objects_.end() && obj->second.use_count() == 1) {
      objects_.erase(obj);
      it = order_.erase(it);
      --idle;
    } else {
      ++it;
    }
  }
}

}  // namespace leakwatch::unwind
