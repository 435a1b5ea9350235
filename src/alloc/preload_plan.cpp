#include "alloc/preload_plan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "common/fd.h"
#include "common/procfs.h"
#include "elf/elf_symbols.h"

namespace leakwatch::alloc {
namespace {

constexpr uint8_t kNop5[] = LEAKWATCH_HOOK_NOP5;

}  // namespace

Result<std::string> find_preload_library() {
  if (const char* env = std::getenv("LEAKWATCH_PRELOAD_LIBRARY"); env && *env) {
    if (::access(env, R_OK) != 0)
      return fail("LEAKWATCH_PRELOAD_LIBRARY={}: {}", env, std::strerror(errno));
    return std::string(env);
  }
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return fail_errno("cannot read /proc/self/exe");
  std::string dir(self, static_cast<size_t>(n));
  dir.resize(dir.rfind('/'));
  std::string path = dir + "/" LEAKWATCH_PRELOAD_LIBRARY;
  if (::access(path.c_str(), R_OK) != 0)
    return fail("--inprocess needs {} next to the leakwatch binary (or set "
                "LEAKWATCH_PRELOAD_LIBRARY): {}",
                path, std::strerror(errno));
  return path;
}

bool preload_wraps(const std::string& function) {
  static const std::set<std::string> kWrapped = {
      "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
      "memalign", "valloc", "pvalloc", "free", "cfree"};
  return kWrapped.contains(function) || function.starts_with("_Zn") ||
         function.starts_with("_Zd");
}

Result<ObjectPlan> plan_preload_hooks(const std::string& library) {
  auto elf = elf::ElfObject::Open(library);
  if (!elf) return std::unexpected(elf.error());
  struct stat st;
  if (::stat(library.c_str(), &st) != 0) return fail_errno("stat " + library);
  ObjectPlan plan;
  plan.path = library;
  plan.display_path = library;
  plan.inode = st.st_ino;
  // Its own mmap calls (the sampled set) are not the program's.
  plan.defines_malloc = true;
  plan.allocator = "leakwatch-preload";
  const std::pair<const char*, lw_fn_kind> hooks[] = {
      {LEAKWATCH_HOOK_ALLOC_SYMBOL, LW_FN_HOOK_ALLOC},
      {LEAKWATCH_HOOK_FREE_SYMBOL, LW_FN_HOOK_FREE},
  };
  for (const auto& [name, kind] : hooks) {
    auto sym = elf->find(name);
    if (!sym) return fail("{}: no symbol {}: not a leakwatch preload library", library, name);
    auto code = elf->read_code(sym->value, sizeof(kNop5));
    if (!code) return std::unexpected(code.error());
    if (std::memcmp(code->data(), kNop5, sizeof(kNop5)) != 0)
      return fail("{}: {} does not start with the 5-byte NOP of preload ABI {}", library, name,
                  LEAKWATCH_PRELOAD_ABI_VERSION);
    ProbeSite site;
    site.function = name;
    site.kind = kind;
    site.symbol_offset = sym->file_offset;
    site.placement.offset = 0;
    site.placement.emulated = true;
    site.placement.insn = "nopl 0x0(%rax,%rax,1)";
    site.placement.reason = "5-byte NOP: the kernel replaces the trap with a call";
    plan.sites.push_back(std::move(site));
  }
  return plan;
}

bool is_mapping_call(uint32_t kind) {
  return kind == LW_FN_MMAP || kind == LW_FN_MREMAP || kind == LW_FN_MUNMAP;
}

Result<void> use_preload_hooks(std::vector<ObjectPlan>& objects, const std::string& library) {
  auto hooks = plan_preload_hooks(library);
  if (!hooks) return std::unexpected(hooks.error());
  for (auto& obj : objects)
    std::erase_if(obj.sites, [](const ProbeSite& site) { return !is_mapping_call(site.kind); });
  // Allocator objects stay, probes or not: their own mmap calls are the allocator's.  The
  // library itself is one of them when a running process already has it loaded: the
  // hooks' plan takes its place.  (Inode numbers repeat across file systems: the name too.)
  auto is_library = [&](const ObjectPlan& obj) {
    return obj.inode == hooks->inode &&
           obj.display_path.ends_with("/" LEAKWATCH_PRELOAD_LIBRARY);
  };
  std::erase_if(objects, [&](const ObjectPlan& obj) {
    return (obj.sites.empty() && !obj.defines_malloc) || is_library(obj);
  });
  objects.push_back(std::move(*hooks));
  return {};
}

Result<std::optional<LoadedPreload>> find_loaded_preload(int pid) {
  auto maps = read_proc_maps(pid);
  if (!maps) return std::unexpected(maps.error());
  const std::string suffix = "/" LEAKWATCH_PRELOAD_LIBRARY;
  const std::string deleted = suffix + " (deleted)";
  for (const auto& m : *maps) {
    if (!m.file_backed() || m.offset != 0 ||
        !(m.path.ends_with(suffix) || m.path.ends_with(deleted)))
      continue;
    LoadedPreload loaded;
    loaded.mapped_path = m.path;
    loaded.path = target_path(pid, m.path);
    // Replaced or removed on disk since the process loaded it (an upgrade): the mapped file
    // itself is still reachable through map_files.
    struct stat st;
    if (m.path.ends_with(deleted) || ::stat(loaded.path.c_str(), &st) != 0 ||
        st.st_ino != m.inode)
      loaded.path = fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, m.start, m.end);
    auto reader = PreloadStatsReader::Create(loaded.path);
    if (!reader) return std::unexpected(reader.error());
    auto stats = reader->read(pid);
    if (!stats) return std::optional<LoadedPreload>{};  // mapped, not initialised yet
    loaded.stats = *stats;
    loaded.reader = std::move(*reader);
    return std::optional<LoadedPreload>{std::move(loaded)};
  }
  return std::optional<LoadedPreload>{};
}

Result<PreloadStatsReader> PreloadStatsReader::Create(const std::string& library) {
  auto elf = elf::ElfObject::Open(library);
  if (!elf) return std::unexpected(elf.error());
  struct stat st;
  if (::stat(library.c_str(), &st) != 0) return fail_errno("stat " + library);
  PreloadStatsReader r;
  r.library_ = library;
  r.inode_ = st.st_ino;
  r.first_load_ = elf->first_load_vaddr().value_or(0);
  auto stats = elf->find_data(LEAKWATCH_PRELOAD_STATS_SYMBOL);
  if (!stats || stats->size < sizeof(leakwatch_preload_stats))
    return fail("{}: no {} symbol: not a leakwatch preload library", library,
                LEAKWATCH_PRELOAD_STATS_SYMBOL);
  r.stats_vaddr_ = stats->value;
  return r;
}

std::optional<leakwatch_preload_stats> PreloadStatsReader::read(int pid) {
  if (base_pid_ != pid || !base_) {
    auto maps = read_proc_maps(pid);
    if (!maps) return std::nullopt;
    base_ = 0;
    for (const auto& m : *maps)
      if (m.inode == inode_ && m.offset == 0 && m.file_backed()) {
        base_ = m.start - first_load_;
        break;
      }
    if (!base_) return std::nullopt;
    base_pid_ = pid;
  }
  leakwatch_preload_stats st{};
  iovec local{&st, sizeof(st)};
  iovec remote{reinterpret_cast<void*>(base_ + stats_vaddr_), sizeof(st)};
  if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof(st))) {
    base_ = 0;  // the process exec'd or went away: look it up again next time
    return std::nullopt;
  }
  if (st.magic != LEAKWATCH_PRELOAD_MAGIC) return std::nullopt;
  return st;
}

}  // namespace leakwatch::alloc
