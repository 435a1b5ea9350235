// ProcessSymbolizer on libdwfl.
//
//   mappings_ (sorted, executable only)     objects_ (ObjectKey -> ModuleRecord)
//   [start,end) path ... ----------------->  Dwfl_Module*, bias, build id, name
//   mapping_modules_[i] points at the record of mappings_[i] (or null: anonymous memory,
//   [vdso], an object that could not be opened).
//
// A refresh re-reads the maps inside dwfl_report_begin/end.  A mapping already seen (same
// path, device, inode, start, offset) gets its module back with dwfl_report_module at the
// exact same range, which libdwfl treats as "still there" and keeps with its ELF, symbol
// table and DWARF; only new objects are opened.  Modules not reported again are freed by
// dwfl_report_end, and their records with them.
#include "symbolize/symbolizer.h"

#include <elfutils/libdwfl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>

#include "common/log.h"
#include "elf/elf_file.h"
#include "symbolize/dwfl_handles.h"
#include "symbolize/object_file.h"
#include "common/procfs.h"

namespace leakwatch::symbolize {
namespace {

// Bounds memory for long sessions; symbolizing again after a reset is cheap (objects stay).
constexpr size_t kMaxCachedSymbols = size_t{1} << 20;

// One loaded object: the file, and where it is loaded.  A library dlclose'd and dlopen'ed
// elsewhere, or replaced on disk, is a different object.
struct ObjectKey {
  std::string path;
  uint64_t dev = 0, inode = 0, bias = 0;
  auto operator<=>(const ObjectKey&) const = default;
};

// Recognises an unchanged mapping without opening its file.
struct MappingKey {
  std::string path;
  uint64_t dev = 0, inode = 0, start = 0, offset = 0;
  auto operator<=>(const MappingKey&) const = default;
};

struct ModuleRecord {
  ObjectKey key;
  Dwfl_Module* module = nullptr;  // owned by the Dwfl
  std::string dwfl_name;          // unique per file, so libdwfl never merges two objects
  Dwarf_Addr low = 0, high = 0;   // the module's range as libdwfl computed it
  std::string basename;
  std::string build_id;
  std::string opened_path;
  std::string root_prefix;        // the target's root for debug files, "" when it is ours
  bool seen = false;              // reported during the current refresh
};

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "malloc@@GLIBC_2.2.5" -> "malloc".  Mangled C++ names never contain '@'.
std::string strip_symbol_version(const char* name) {
  const char* at = std::strchr(name, '@');
  return at == nullptr ? std::string(name) : std::string(name, at);
}

// Every module is reported with its ELF already open, so libdwfl never has to find one.
int find_elf_none(Dwfl_Module*, void**, const char*, Dwarf_Addr, char** file_name, Elf** elfp) {
  *file_name = nullptr;
  *elfp = nullptr;
  return -1;
}

// Separate debug info, without debuginfod (dwfl_standard_find_debuginfo would ask it when
// DEBUGINFOD_URLS is set, e.g. by Debian's profile script): first by build id under the
// debuginfo path (/usr/lib/debug, and the target's own when its root differs), then by
// .gnu_debuglink name.  A zero CRC is libdwfl looking for a dwz alt file, which the build
// id lookup covers (and libdw searches on its own).
int find_debuginfo(Dwfl_Module* mod, void** userdata, const char* modname, Dwarf_Addr base,
                   const char* file_name, const char* debuglink_file, GElf_Word debuglink_crc,
                   char** debuginfo_file_name) {
  int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
  if (fd >= 0) return fd;
  if (debuglink_file == nullptr || debuglink_crc == 0 || *userdata == nullptr) return -1;
  const auto* rec = static_cast<const ModuleRecord*>(*userdata);
  std::string path;
  UniqueFd found = find_debuglink_file(rec->key.path, rec->root_prefix, debuglink_file,
                                       debuglink_crc, rec->build_id, path);
  if (!found.valid()) return -1;
  std::free(*debuginfo_file_name);
  *debuginfo_file_name = ::strdup(path.c_str());
  return found.release();
}

bool same_mappings(const std::vector<Mapping>& a, const std::vector<Mapping>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Mapping& x, const Mapping& y) {
    return x.start == y.start && x.end == y.end && x.file_offset == y.file_offset &&
           x.inode == y.inode && x.path == y.path;
  });
}

class DwflProcessSymbolizer final : public ProcessSymbolizer {
 public:
  DwflProcessSymbolizer(int pid, const SymbolizerOptions& options)
      : pid_(pid), options_(options) {}
  // libdwfl keeps a pointer to callbacks_, so the object stays where it was created.
  DwflProcessSymbolizer(const DwflProcessSymbolizer&) = delete;
  DwflProcessSymbolizer& operator=(const DwflProcessSymbolizer&) = delete;

  Result<void> init();
  Result<void> refresh() override;
  Symbol symbolize(uint64_t address) override;
  const std::vector<Mapping>& mappings() const override { return mappings_; }
  SymbolizerStats stats() const override { return stats_; }

 private:
  // The parsed maps, or nullopt when the process is gone (exited, zombie, pid reused).
  Result<std::optional<std::vector<MapEntry>>> read_maps();
  void apply(const std::vector<MapEntry>& entries);
  ModuleRecord* module_for(const MapEntry& entry,
                           std::map<MappingKey, ObjectKey>& next_by_mapping);
  bool revive(ModuleRecord& rec);
  std::optional<size_t> find_mapping(uint64_t address) const;
  Symbol resolve(uint64_t address, size_t index) const;
  bool may_auto_refresh() const;

  int pid_;
  SymbolizerOptions options_;
  std::string root_prefix_;
  std::string debuginfo_path_;
  char* debuginfo_path_ptr_ = nullptr;  // libdwfl reads the path through a char**
  Dwfl_Callbacks callbacks_{};
  DwflHandle dwfl_;
  uint64_t start_time_ = 0;
  bool exited_ = false;
  bool auto_refreshed_ = false;
  std::chrono::steady_clock::time_point last_auto_refresh_{};
  std::vector<Mapping> mappings_;
  std::vector<ModuleRecord*> mapping_modules_;  // parallel to mappings_
  std::map<ObjectKey, std::unique_ptr<ModuleRecord>> objects_;
  std::map<MappingKey, ObjectKey> by_mapping_;
  std::unordered_map<uint64_t, Symbol> cache_;
  SymbolizerStats stats_;
};

Result<void> DwflProcessSymbolizer::init() {
  const std::string proc = fmt::format("/proc/{}", pid_);
  auto stat_text = read_proc_file(proc + "/stat");
  if (!stat_text) {
    if (stat_text.error().errnum == ENOENT) return fail("no such process {}", pid_);
    return std::unexpected(stat_text.error());
  }
  auto st = parse_proc_stat(*stat_text);
  if (!st) return std::unexpected(st.error());
  if (st->state == 'Z' || st->state == 'X') return fail("process {} has exited", pid_);
  start_time_ = st->start_time_ticks;

  // Debug files of a process with another root (container, chroot) live under that root.
  struct stat ours{}, theirs{};
  const std::string root = proc + "/root";
  if (::stat("/", &ours) == 0 && ::stat(root.c_str(), &theirs) == 0 &&
      (ours.st_dev != theirs.st_dev || ours.st_ino != theirs.st_ino)) {
    root_prefix_ = root;
  }
  debuginfo_path_ = "/usr/lib/debug";
  if (!root_prefix_.empty()) debuginfo_path_ += ":" + root_prefix_ + "/usr/lib/debug";
  debuginfo_path_ptr_ = debuginfo_path_.data();

  elf::libelf_ready();
  callbacks_.find_elf = &find_elf_none;
  callbacks_.find_debuginfo = &find_debuginfo;
  callbacks_.section_address = &dwfl_offline_section_address;
  callbacks_.debuginfo_path = &debuginfo_path_ptr_;
  dwfl_.reset(dwfl_begin(&callbacks_));
  if (!dwfl_) return fail("dwfl_begin: {}", dwfl_errmsg(-1));

  if (auto r = refresh(); !r) return r;
  if (exited_) return fail("process {} has exited", pid_);
  return {};
}

Result<std::optional<std::vector<MapEntry>>> DwflProcessSymbolizer::read_maps() {
  const std::string proc = fmt::format("/proc/{}", pid_);
  auto gone = [](const Error& e) { return e.errnum == ENOENT || e.errnum == ESRCH; };
  auto text = read_proc_file(proc + "/maps");
  if (!text) {
    if (gone(text.error())) return std::nullopt;
    return std::unexpected(text.error());
  }
  // Read after the maps: if the start time still matches, the maps were this process's.
  auto stat_text = read_proc_file(proc + "/stat");
  if (!stat_text) {
    if (gone(stat_text.error())) return std::nullopt;
    return std::unexpected(stat_text.error());
  }
  auto st = parse_proc_stat(*stat_text);
  if (!st) return std::unexpected(st.error());
  if (st->start_time_ticks != start_time_ || st->state == 'Z' || st->state == 'X') return std::nullopt;
  auto entries = parse_proc_maps(*text);
  if (!entries) return std::unexpected(entries.error());
  ++stats_.maps_reads;
  return std::optional(std::move(*entries));
}

Result<void> DwflProcessSymbolizer::refresh() {
  if (exited_) return {};
  auto entries = read_maps();
  if (!entries) return std::unexpected(entries.error());
  if (!*entries) {
    log::debug("process {} is gone; keeping {} mappings", pid_, mappings_.size());
    exited_ = true;
    stats_.process_exited = true;
    return {};
  }
  apply(**entries);
  return {};
}

bool DwflProcessSymbolizer::revive(ModuleRecord& rec) {
  if (rec.seen) return true;
  // Same name and range: libdwfl un-marks the existing module instead of making a new one.
  Dwfl_Module* m = dwfl_report_module(dwfl_.get(), rec.dwfl_name.c_str(), rec.low, rec.high);
  if (m != rec.module) {
    // Not expected; the old module will be freed by dwfl_report_end, so forget it.  The
    // fresh module (if any) gets its ELF when the caller reports the object again.
    log::warn("libdwfl did not keep module {}", rec.dwfl_name);
    return false;
  }
  rec.seen = true;
  return true;
}

ModuleRecord* DwflProcessSymbolizer::module_for(const MapEntry& entry,
                                                std::map<MappingKey, ObjectKey>& next_by_mapping) {
  const std::string path = entry.file_path();
  const uint64_t dev = makedev(entry.dev_major, entry.dev_minor);
  MappingKey mkey{path, dev, entry.inode, entry.start, entry.offset};

  if (auto it = by_mapping_.find(mkey); it != by_mapping_.end()) {
    if (auto obj = objects_.find(it->second); obj != objects_.end()) {
      if (revive(*obj->second)) {
        next_by_mapping.emplace(mkey, obj->first);
        return obj->second.get();
      }
      objects_.erase(obj);
    }
  }

  auto opened = open_mapped_object(pid_, entry);
  if (!opened) {
    log::debug("symbolize pid {}: {}", pid_, opened.error().message);
    return nullptr;
  }
  auto bias = compute_load_bias(opened->fd.get(), entry);
  if (!bias) {
    log::debug("symbolize pid {}: {}", pid_, bias.error().message);
    return nullptr;
  }
  ObjectKey okey{path, dev, entry.inode, *bias};
  // Another mapping of an object already reported (objects with several code segments).
  if (auto obj = objects_.find(okey); obj != objects_.end()) {
    if (revive(*obj->second)) {
      next_by_mapping.emplace(mkey, okey);
      return obj->second.get();
    }
    objects_.erase(obj);
  }

  auto rec = std::make_unique<ModuleRecord>();
  rec->key = okey;
  rec->dwfl_name = fmt::format("{}#{:x}:{}", path, dev, entry.inode);
  // add_p_vaddr: `base` is the bias, so ET_DYN objects land where the kernel put them.
  Dwfl_Module* mod = dwfl_report_elf(dwfl_.get(), rec->dwfl_name.c_str(), path.c_str(),
                                     opened->fd.get(), *bias, true);
  if (mod == nullptr) {
    log::debug("symbolize pid {}: cannot report {}: {}", pid_, path, dwfl_errmsg(-1));
    return nullptr;
  }
  (void)opened->fd.release();  // the module owns the descriptor now
  void** userdata = nullptr;
  dwfl_module_info(mod, &userdata, &rec->low, &rec->high, nullptr, nullptr, nullptr, nullptr);
  *userdata = rec.get();  // read back by find_debuginfo
  rec->module = mod;
  rec->basename = basename_of(path);
  rec->opened_path = opened->via;
  rec->root_prefix = root_prefix_;
  const unsigned char* bits = nullptr;
  GElf_Addr note_vaddr = 0;
  int len = dwfl_module_build_id(mod, &bits, &note_vaddr);
  if (len > 0) rec->build_id = hex_string(bits, static_cast<size_t>(len));
  rec->seen = true;
  ++stats_.objects_opened;
  next_by_mapping.emplace(mkey, okey);
  ModuleRecord* out = rec.get();
  objects_.emplace(okey, std::move(rec));
  return out;
}

void DwflProcessSymbolizer::apply(const std::vector<MapEntry>& entries) {
  for (auto& [key, rec] : objects_) rec->seen = false;
  std::vector<Mapping> next_mappings;
  std::vector<ModuleRecord*> next_modules;
  std::map<MappingKey, ObjectKey> next_by_mapping;

  dwfl_report_begin(dwfl_.get());
  for (const MapEntry& e : entries) {
    if (!e.executable) continue;
    Mapping m{e.start, e.end, e.offset, e.path, e.inode, e.deleted(), ""};
    ModuleRecord* rec = e.file_backed() ? module_for(e, next_by_mapping) : nullptr;
    if (rec != nullptr) m.opened_path = rec->opened_path;
    next_mappings.push_back(std::move(m));
    next_modules.push_back(rec);
  }
  dwfl_report_end(dwfl_.get(), nullptr, nullptr);  // frees the modules not reported again

  for (auto it = objects_.begin(); it != objects_.end();) {
    if (it->second->seen) {
      ++it;
    } else {
      it = objects_.erase(it);
      ++stats_.objects_dropped;
    }
  }
  // The kernel lists mappings sorted; sort anyway, lookups depend on it.
  std::vector<size_t> order(next_mappings.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return next_mappings[a].start < next_mappings[b].start;
  });
  std::vector<Mapping> sorted;
  std::vector<ModuleRecord*> sorted_modules;
  for (size_t i : order) {
    sorted.push_back(std::move(next_mappings[i]));
    sorted_modules.push_back(next_modules[i]);
  }
  // Cached symbols are only valid for the mappings they were computed with.
  if (!same_mappings(sorted, mappings_)) cache_.clear();
  mappings_ = std::move(sorted);
  mapping_modules_ = std::move(sorted_modules);
  by_mapping_ = std::move(next_by_mapping);
}

std::optional<size_t> DwflProcessSymbolizer::find_mapping(uint64_t address) const {
  auto it = std::upper_bound(mappings_.begin(), mappings_.end(), address,
                             [](uint64_t a, const Mapping& m) { return a < m.start; });
  if (it == mappings_.begin()) return std::nullopt;
  --it;
  if (address >= it->end) return std::nullopt;
  return static_cast<size_t>(it - mappings_.begin());
}

Symbol DwflProcessSymbolizer::resolve(uint64_t address, size_t index) const {
  Symbol s;
  s.address = address;
  const Mapping& m = mappings_[index];
  s.module_path = m.path;
  const ModuleRecord* rec = mapping_modules_[index];
  if (rec == nullptr) {
    // Anonymous executable memory (JIT), [vdso], or a file that could not be opened.
    if (m.path.empty()) {
      s.module = "[anon]";
    } else if (m.path.front() == '[') {
      s.module = m.path;
    } else {
      MapEntry e;
      e.path = m.path;
      s.module = basename_of(e.file_path());
    }
    return s;
  }
  s.module = rec->basename;
  s.build_id = rec->build_id;
  s.module_offset = address - rec->key.bias;

  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* name =
      dwfl_module_addrinfo(rec->module, address, &offset, &sym, nullptr, nullptr, nullptr);
  if (name != nullptr && *name != '\0') {
    s.function = demangle(strip_symbol_version(name));
    s.offset = offset;
  }
  if (!options_.source_lines) return s;
  if (Dwfl_Line* line = dwfl_module_getsrc(rec->module, address); line != nullptr) {
    int lineno = 0;
    const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
    if (file != nullptr) {
      s.file = file;
      s.line = lineno;
    }
  }
  return s;
}

bool DwflProcessSymbolizer::may_auto_refresh() const {
  if (exited_) return false;
  if (!auto_refreshed_) return true;
  return std::chrono::steady_clock::now() - last_auto_refresh_ >=
         options_.min_auto_refresh_interval;
}

Symbol DwflProcessSymbolizer::symbolize(uint64_t address) {
  if (auto it = cache_.find(address); it != cache_.end()) {
    ++stats_.cache_hits;
    return it->second;
  }
  ++stats_.cache_misses;
  std::optional<size_t> index = find_mapping(address);
  if (!index && may_auto_refresh()) {
    auto_refreshed_ = true;
    last_auto_refresh_ = std::chrono::steady_clock::now();
    ++stats_.auto_refreshes;
    if (auto r = refresh(); !r) log::debug("symbolize pid {}: {}", pid_, r.error().message);
    index = find_mapping(address);
  }
  if (!index) {
    // Not cached: a later refresh may find it mapped.
    Symbol unknown;
    unknown.address = address;
    return unknown;
  }
  Symbol s = resolve(address, *index);
  if (cache_.size() >= kMaxCachedSymbols) cache_.clear();
  cache_.emplace(address, s);
  return s;
}

}  // namespace

Result<std::unique_ptr<ProcessSymbolizer>> ProcessSymbolizer::Create(int pid) {
  return Create(pid, SymbolizerOptions{});
}

Result<std::unique_ptr<ProcessSymbolizer>> ProcessSymbolizer::Create(
    int pid, const SymbolizerOptions& options) {
  if (pid <= 0) return fail("invalid pid {}", pid);
  auto s = std::make_unique<DwflProcessSymbolizer>(pid, options);
  if (auto r = s->init(); !r) return std::unexpected(r.error());
  return std::unique_ptr<ProcessSymbolizer>(std::move(s));
}

}  // namespace leakwatch::symbolize
