// The call frame information of one ELF object, and a cache of objects keyed by build id,
// so processes running the same binaries (and refreshes of one process) share it.
//
//   ObjectCfi
//     fd, Elf ──> .eh_frame (+ .eh_frame_hdr)      dwarf_getcfi_elf, at first lookup
//             └─> .debug_frame                      only when .eh_frame has no entry: in the
//                                                   object itself, else in its debug file
//                                                   (build-id path, then .gnu_debuglink)
//     rows_: start vaddr -> UnwindRow               every row looked up, for its whole range
//
// Rows are looked up by ELF virtual address (runtime address - load bias).
//
// Thread-safety: neither class is thread-safe (libdw's CFI caches are not); unwinders that
// share a CfiCache must run on one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/fd.h"
#include "common/result.h"
#include "unwind/cfi_rules.h"

struct Dwarf_CFI_s;
struct Dwarf;
struct Elf;

namespace leakwatch::unwind {

struct ObjectCfiStats {
  uint64_t row_lookups = 0;
  uint64_t row_cache_hits = 0;
  uint64_t rows_from_eh_frame = 0;
  uint64_t rows_from_debug_frame = 0;
  uint64_t lookups_without_cfi = 0;  // no FDE covers the address
};

class ObjectCfi {
 public:
  // Takes an open ELF file.  `path` is the path in the target's namespace (for messages and
  // .gnu_debuglink), `root_prefix` the target's root ("" when it is ours).  Cheap: the CFI
  // sections are read at the first lookup.
  [[nodiscard]] static Result<std::unique_ptr<ObjectCfi>> Open(UniqueFd fd, std::string path,
                                                               std::string root_prefix,
                                                               bool use_debug_frame);
  ~ObjectCfi();
  ObjectCfi(const ObjectCfi&) = delete;
  ObjectCfi& operator=(const ObjectCfi&) = delete;

  // The rules at ELF address `vaddr`, or nullptr when no CFI covers it (then `*error`
  // says why).  The pointer stays valid until the next call that misses the cache.
  const UnwindRow* row_for(uint64_t vaddr, std::string* error);

  // Forgets the cached rows (memory pressure; benchmarks of the uncached path).
  void clear_rows() { rows_.clear(); }

  // Reads file bytes (for memory reads from read-only file mappings).
  bool read_file(uint64_t offset, void* out, size_t size) const;

  const std::string& path() const { return path_; }
  const std::string& build_id() const { return build_id_; }  // lowercase hex, may be ""
  // What identifies the object in a CfiCache: "b:<build id>", else "f:dev:inode:size:mtime".
  const std::string& cache_key() const { return cache_key_; }
  const ObjectCfiStats& stats() const { return stats_; }
  bool has_eh_frame();  // loads the CFI if needed

  // Bounds memory: rows are dropped (all at once) when there are more than this.
  static constexpr size_t kMaxRows = 1 << 16;

 private:
  ObjectCfi() = default;
  void load_eh_frame();
  void load_debug_frame();
  const UnwindRow* insert(Result<UnwindRow> row, std::string* error);

  UniqueFd fd_;
  Elf* elf_ = nullptr;
  std::string path_, root_prefix_, build_id_, cache_key_;
  bool use_debug_frame_ = true;
  bool eh_loaded_ = false, debug_loaded_ = false;
  Dwarf_CFI_s* eh_cfi_ = nullptr;     // owned (dwarf_cfi_end)
  Dwarf* own_dwarf_ = nullptr;        // .debug_frame in the object itself (dwarf_end)
  UniqueFd debug_fd_;                 // separate debug file
  Elf* debug_elf_ = nullptr;
  Dwarf* debug_dwarf_ = nullptr;
  Dwarf_CFI_s* debug_cfi_ = nullptr;  // owned by own_dwarf_ or debug_dwarf_
  std::map<uint64_t, UnwindRow> rows_;  // by start address
  ObjectCfiStats stats_;
};

// Objects by cache key.  Holds them while any unwinder uses them, and keeps up to
// `max_idle` more that no unwinder uses (the most recently loaded ones).
class CfiCache {
 public:
  explicit CfiCache(size_t max_idle = 64) : max_idle_(max_idle) {}

  // The cached object for `fd`'s file (build id or identity), or a new one made from fd.
  [[nodiscard]] Result<std::shared_ptr<ObjectCfi>> get(UniqueFd fd, const std::string& path,
                                                       const std::string& root_prefix,
                                                       bool use_debug_frame);
  size_t size() const { return objects_.size(); }
  // Forgets every object's cached rows; the objects and their CFI sections stay.
  void clear_rows() {
    for (auto& [key, obj] : objects_) obj->clear_rows();
  }
  uint64_t loads() const { return loads_; }  // objects opened (cache misses)
  uint64_t hits() const { return hits_; }

 private:
  void trim();
  size_t max_idle_;
  std::unordered_map<std::string, std::shared_ptr<ObjectCfi>> objects_;
  std::map<uint64_t, std::string> order_;  // load sequence -> key, oldest first
  uint64_t seq_ = 0, loads_ = 0, hits_ = 0;
};

}  // namespace leakwatch::unwind
