#include "inject/safe_point.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "elf/elf_symbols.h"

namespace leakwatch::inject {
namespace {

std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// glibc's __restore_rt: mov $0xf,%rax; syscall (rt_sigreturn).
constexpr uint8_t kRestoreRt[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};

}  // namespace

bool SafePointJudge::unsafe_function(const std::string& n) {
  static const std::set<std::string> kExact = {
      // the allocator
      "malloc", "free", "cfree", "calloc", "realloc", "reallocarray", "posix_memalign",
      "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size", "malloc_trim",
      "malloc_stats", "malloc_info", "mallinfo", "mallinfo2", "mallopt", "__libc_malloc",
      "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign", "__libc_valloc",
      "__libc_pvalloc", "mallocx", "rallocx", "xallocx", "sallocx", "dallocx", "sdallocx",
      "nallocx", "mallctl", "mallctlnametomib", "mallctlbymib",
      // the loader's entry points in libc (they take its locks)
      "dlopen", "dlmopen", "dlclose", "dlsym", "dlvsym", "dladdr", "dladdr1", "dlinfo",
      "dlerror", "dl_iterate_phdr", "__libc_dlopen_mode", "__libc_dlsym", "__libc_dlclose",
      "_dl_find_object",
      // locks the loader or the allocator may need
      "fork", "vfork", "_Fork", "__libc_fork", "posix_spawn", "posix_spawnp", "system",
      "popen", "pthread_create", "pthread_exit", "exit", "_exit", "quick_exit", "abort",
      "__cxa_finalize", "__call_tls_dtors", "__libc_freeres", "backtrace", "backtrace_symbols",
      "setlocale", "newlocale", "freelocale", "iconv_open", "iconv_close", "__cxa_thread_atexit_impl"};
  if (kExact.contains(n)) return true;
  // operator new/delete, and prefixed allocator APIs
  return n.starts_with("_Znw") || n.starts_with("_Zna") || n.starts_with("_Zdl") ||
         n.starts_with("_Zda") || n.starts_with("je_") || n.starts_with("tc_") ||
         n.starts_with("mi_");
}

Result<std::unique_ptr<SafePointJudge>> SafePointJudge::Create(int pid) {
  std::unique_ptr<SafePointJudge> j(new SafePointJudge());
  j->pid_ = pid;
  auto maps = read_proc_maps(pid);
  if (!maps) return std::unexpected(maps.error());
  j->maps_ = std::move(*maps);
  auto unwinder = unwind::DwarfUnwinder::Create(pid);
  if (!unwinder) return std::unexpected(unwinder.error());
  j->unwinder_ = std::move(*unwinder);
  // Symbols and CFI loaded now, before the process is stopped: a snapshot with no stack at
  // the start of each executable mapping makes the unwinder open that object's CFI.
  auto warm = std::make_unique<lw_stack_snapshot>();
  std::memset(warm.get(), 0, offsetof(lw_stack_snapshot, stack));
  warm->tgid = static_cast<uint32_t>(pid);
  warm->flags = LW_SNAPSHOT_IP_EXACT;
  for (const auto& m : j->maps_)
    if (m.executable && m.file_backed()) {
      (void)j->object(m.path);
      warm->ip = m.start;
      (void)j->unwinder_->unwind(*warm);
    }
  return j;
}

const SafePointJudge::Object& SafePointJudge::object(const std::string& path) {
  auto it = objects_.find(path);
  if (it != objects_.end()) return it->second;
  Object o;
  auto base = basename_of(path);
  if (base.starts_with("ld-linux") || base.starts_with("ld-2.")) {
    o.whole = true;
    o.why = "in the dynamic loader (" + base + ")";
  } else if (base.starts_with("libjemalloc") || base.starts_with("libtcmalloc") ||
             base.starts_with("libmimalloc") || base.starts_with("libleakwatch-preload")) {
    o.whole = true;
    o.why = "in the allocator (" + base + ")";
  } else if (auto elf = elf::ElfObject::Open(target_path(pid_, path))) {
    for (const auto& s : elf->symbols())
      if (s.size > 0 && unsafe_function(s.name))
        o.ranges.push_back({s.file_offset, s.file_offset + s.size, s.name});
  }
  return objects_.emplace(path, std::move(o)).first->second;
}

std::string SafePointJudge::frame_problem(uint64_t pc, bool exact) {
  uint64_t at = exact ? pc : pc - 1;
  for (const auto& m : maps_) {
    if (at < m.start || at >= m.end) continue;
    if (!m.file_backed()) return "";
    const Object& o = object(m.path);
    if (o.whole) return o.why;
    uint64_t off = at - m.start + m.offset;
    for (const auto& r : o.ranges)
      if (off >= r.lo && off < r.hi)
        return fmt::format("in {} ({})", r.name, basename_of(m.path));
    return "";
  }
  return "";
}

std::string SafePointJudge::judge(const StoppedThread& t) {
  if (!t.stopped) return "did not stop (in vfork, or in uninterruptible sleep)";
  if (t.group_stop) return "stopped by a stopping signal";
  if (t.signal_stop) return fmt::format("about to receive signal {}", t.signal_to_deliver);
  // A copy of its stack, as far as its mapping goes (and the snapshot holds).
  auto snap = std::make_unique<lw_stack_snapshot>();
  std::memset(snap.get(), 0, offsetof(lw_stack_snapshot, stack));
  snap->ip = t.regs.rip;
  snap->sp = t.regs.rsp;
  snap->bp = t.regs.rbp;
  snap->tgid = static_cast<uint32_t>(pid_);
  snap->tid = static_cast<uint32_t>(t.tid);
  snap->flags = LW_SNAPSHOT_IP_EXACT;
  uint64_t end = t.regs.rsp + LW_SNAPSHOT_MAX;
  if (auto maps = read_proc_maps(pid_))
    for (const auto& m : *maps)
      if (t.regs.rsp >= m.start && t.regs.rsp < m.end) end = std::min(end, m.end);
  snap->stack_size = static_cast<uint32_t>(
      read_memory(pid_, t.regs.rsp, snap->stack, static_cast<size_t>(end - t.regs.rsp)));
  auto stack = unwinder_->unwind(*snap);
  if (!stack) return "its stack could not be read: " + stack.error().message;
  for (size_t i = 0; i < stack->frames.size(); ++i) {
    uint64_t pc = stack->frames[i];
    // A signal frame: the return address of a handler is glibc's __restore_rt.  (At the
    // innermost frame the thread may be inside it: before or after its syscall.)
    for (uint64_t start : i == 0 ? std::vector<uint64_t>{pc, pc - 7, pc - 9} : std::vector<uint64_t>{pc}) {
      uint8_t code[sizeof(kRestoreRt)];
      if (read_memory(pid_, start, code, sizeof(code)) == sizeof(code) &&
          std::memcmp(code, kRestoreRt, sizeof(code)) == 0)
        return "in a signal handler";
    }
    if (auto why = frame_problem(pc, i == 0); !why.empty()) return why;
  }
  if (stack->truncated) return "its stack could not be unwound to the end (" + stack->reason + ")";
  return "";
}

}  // namespace leakwatch::inject
