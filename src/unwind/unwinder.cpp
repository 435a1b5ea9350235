#include "unwind/unwinder.h"

#include <fcntl.h>
#include <libelf.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>

#include "common/log.h"
#include "elf/elf_file.h"
#include "symbolize/object_file.h"
#include "common/procfs.h"

namespace leakwatch::unwind {

static_assert(offsetof(lw_stack_snapshot, stack) == LW_SNAPSHOT_HEADER_SIZE);
static_assert(offsetof(lw_stack_snapshot, alloc_addr) == 24);
static_assert(offsetof(lw_stack_snapshot, tgid) == 32);
static_assert(offsetof(lw_stack_snapshot, flags) == 44);
static_assert(alignof(lw_stack_snapshot) == 8);

const char* truncation_name(Truncation t) {
  switch (t) {
    case Truncation::kNone: return "none";
    case Truncation::kSnapshotTooSmall: return "snapshot_too_small";
    case Truncation::kNoMapping: return "no_mapping";
    case Truncation::kNoObject: return "no_object";
    case Truncation::kNoCfi: return "no_cfi";
    case Truncation::kUnknownRegister: return "unknown_register";
    case Truncation::kBadMemory: return "bad_memory";
    case Truncation::kBadCfi: return "bad_cfi";
    case Truncation::kNoProgress: return "no_progress";
    case Truncation::kDepthLimit: return "depth_limit";
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;

// A mapping of the process, with the object behind it when it is a file we could open.
struct Mapping {
  uint64_t start = 0, end = 0, offset = 0;
  bool writable = false, executable = false;
  std::string path;  // verbatim from maps
  uint64_t dev = 0, inode = 0;
  std::shared_ptr<ObjectCfi> object;
  uint64_t bias = 0;  // runtime address - ELF vaddr
  std::string error;  // why an executable file mapping has no object
};

using MappingKey = std::tuple<std::string, uint64_t, uint64_t, uint64_t, uint64_t>;
MappingKey key_of(const Mapping& m) { return {m.path, m.dev, m.inode, m.start, m.offset}; }

using Opener = std::function<Result<symbolize::OpenedObject>(const MapEntry&)>;

}  // namespace

struct DwarfUnwinder::Impl {
  int pid = 0;  // 0: offline
  UnwindOptions options;
  std::shared_ptr<CfiCache> cache;
  Opener opener;
  std::string root_prefix;
  uint64_t start_time = 0;
  bool exited = false;
  bool auto_refreshed = false;
  Clock::time_point last_auto_refresh{};
  std::vector<Mapping> mappings;  // sorted by start
  StackTable stacks;
  UnwindStats stats;

  Result<void> init_live();
  Result<std::optional<std::vector<MapEntry>>> read_maps();
  void apply(const std::vector<MapEntry>& entries);
  const Mapping* find(uint64_t address) const;
  const Mapping* find_code(uint64_t address);
  Result<void> refresh();
};

namespace {

// The process memory the unwinder can see: the snapshot, and read-only file mappings.
class SnapshotMemory final : public MemoryReader {
 public:
  SnapshotMemory(const lw_stack_snapshot& snap, const DwarfUnwinder::Impl& impl)
      : snap_(snap), impl_(impl) {}

  bool read(uint64_t address, void* out, size_t size) override {
    if (address >= snap_.sp) {
      uint64_t off = address - snap_.sp;
      if (off <= snap_.stack_size && size <= snap_.stack_size - off) {
        std::memcpy(out, snap_.stack + off, size);
        used_ = std::max<uint64_t>(used_, off + size);
        return true;
      }
    }
    // Constant data a CFI expression may read (rare on x86-64): the file has it.
    const Mapping* m = impl_.find(address);
    if (m != nullptr && !m->writable && m->object != nullptr && address + size <= m->end &&
        address + size > address) {
      return m->object->read_file(m->offset + (address - m->start), out, size);
    }
    return false;
  }

  uint64_t used() const { return used_; }

 private:
  const lw_stack_snapshot& snap_;
  const DwarfUnwinder::Impl& impl_;
  uint64_t used_ = 0;
};

std::string mapping_name(const Mapping& m) {
  return m.path.empty() ? std::string("[anon]") : m.path;
}

}  // namespace

Result<void> DwarfUnwinder::Impl::init_live() {
  const std::string proc = fmt::format("/proc/{}", pid);
  auto stat_text = read_proc_file(proc + "/stat");
  if (!stat_text) {
    if (stat_text.error().errnum == ENOENT) return fail("no such process {}", pid);
    return std::unexpected(stat_text.error());
  }
  auto st = parse_proc_stat(*stat_text);
  if (!st) return std::unexpected(st.error());
  if (st->state == 'Z' || st->state == 'X') return fail("process {} has exited", pid);
  start_time = st->start_time_ticks;
  // Debug files of a process with another root (container, chroot) live under that root.
  struct stat ours{}, theirs{};
  const std::string root = proc + "/root";
  if (::stat("/", &ours) == 0 && ::stat(root.c_str(), &theirs) == 0 &&
      (ours.st_dev != theirs.st_dev || ours.st_ino != theirs.st_ino)) {
    root_prefix = root;
  }
  opener = [p = pid](const MapEntry& e) { return symbolize::open_mapped_object(p, e); };
  if (auto r = refresh(); !r) return r;
  if (exited) return fail("process {} has exited", pid);
  return {};
}

Result<std::optional<std::vector<MapEntry>>> DwarfUnwinder::Impl::read_maps() {
  const std::string proc = fmt::format("/proc/{}", pid);
  auto gone = [](const Error& e) { return e.errnum == ENOENT || e.errnum == ESRCH; };
  auto text = read_proc_file(proc + "/maps");
  if (!text) {
    if (gone(text.error())) return std::nullopt;
    return std::unexpected(text.error());
  }
  // Read after the maps: a matching start time means the maps were this process's.
  auto stat_text = read_proc_file(proc + "/stat");
  if (!stat_text) {
    if (gone(stat_text.error())) return std::nullopt;
    return std::unexpected(stat_text.error());
  }
  auto st = parse_proc_stat(*stat_text);
  if (!st) return std::unexpected(st.error());
  if (st->start_time_ticks != start_time || st->state == 'Z' || st->state == 'X') return std::nullopt;
  auto entries = parse_proc_maps(*text);
  if (!entries) return std::unexpected(entries.error());
  ++stats.maps_reads;
  return std::optional(std::move(*entries));
}

Result<void> DwarfUnwinder::Impl::refresh() {
  if (exited || pid == 0) return {};
  auto entries = read_maps();
  if (!entries) return std::unexpected(entries.error());
  if (!*entries) {
    log::debug("unwind: process {} is gone; keeping {} mappings", pid, mappings.size());
    exited = true;
    stats.process_exited = true;
    return {};
  }
  apply(**entries);
  return {};
}

void DwarfUnwinder::Impl::apply(const std::vector<MapEntry>& entries) {
  std::map<MappingKey, const Mapping*> previous;
  for (const Mapping& m : mappings) previous.emplace(key_of(m), &m);

  std::vector<Mapping> next;
  next.reserve(entries.size());
  // Objects opened in this pass, by (dev, inode): several mappings of one file share it.
  std::map<std::pair<uint64_t, uint64_t>, std::pair<std::shared_ptr<ObjectCfi>, uint64_t>> by_file;
  for (const MapEntry& e : entries) {
    Mapping m;
    m.start = e.start;
    m.end = e.end;
    m.offset = e.offset;
    m.writable = e.writable;
    m.executable = e.executable;
    m.path = e.path;
    m.dev = makedev(e.dev_major, e.dev_minor);
    m.inode = e.inode;
    if (e.executable && e.file_backed()) {
      if (auto it = previous.find(key_of(m)); it != previous.end()) {
        m.object = it->second->object;
        m.bias = it->second->bias;
        m.error = it->second->error;
      } else {
        auto opened = opener(e);
        if (!opened) {
          m.error = opened.error().message;
        } else {
          auto bias = symbolize::compute_load_bias(opened->fd.get(), e);
          if (!bias) {
            m.error = bias.error().message;
          } else {
            auto obj = cache->get(std::move(opened->fd), e.file_path(), root_prefix,
                                  options.use_debug_frame);
            if (!obj) {
              m.error = obj.error().message;
            } else {
              m.object = std::move(*obj);
              m.bias = *bias;
              ++stats.objects_opened;
            }
          }
        }
        if (!m.error.empty()) {
          ++stats.object_failures;
          log::debug("unwind pid {}: {}", pid, m.error);
        }
      }
      if (m.object != nullptr) by_file[{m.dev, m.inode}] = {m.object, m.bias};
    } else if (e.path == "[uprobes]") {
      // The kernel's uretprobe trampoline: a return address there was replaced by a return
      // probe of a function that had not returned when the snapshot was taken; the real one
      // is only in the kernel (the snapshot should be taken at the outermost probed return).
      m.error = "return address is the uretprobe trampoline ([uprobes]): a probed function "
                "further out had not returned";
    } else if (e.executable && !e.path.empty() && e.path.front() == '[') {
      // [vdso] & co.: their CFI lives only in memory, which the unwinder does not read;
      // saying so keeps the frame-pointer guess away from code built without them.
      m.error = e.path + ": CFI of special mappings is not loaded";
    }
    next.push_back(std::move(m));
  }
  // Read-only data mappings of the objects, for memory reads outside the snapshot.
  for (Mapping& m : next) {
    if (m.executable || m.writable || m.inode == 0) continue;
    if (auto it = by_file.find({m.dev, m.inode}); it != by_file.end()) {
      m.object = it->second.first;
      m.bias = it->second.second;
    }
  }
  std::sort(next.begin(), next.end(),
            [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  mappings = std::move(next);
}

const Mapping* DwarfUnwinder::Impl::find(uint64_t address) const {
  auto it = std::upper_bound(mappings.begin(), mappings.end(), address,
                             [](uint64_t a, const Mapping& m) { return a < m.start; });
  if (it == mappings.begin()) return nullptr;
  --it;
  return address < it->end ? &*it : nullptr;
}

const Mapping* DwarfUnwinder::Impl::find_code(uint64_t address) {
  const Mapping* m = find(address);
  if (m != nullptr && m->executable) return m;
  const bool may_refresh =
      pid != 0 && !exited &&
      (!auto_refreshed || Clock::now() - last_auto_refresh >= options.min_auto_refresh_interval);
  if (!may_refresh) return nullptr;
  auto_refreshed = true;
  last_auto_refresh = Clock::now();
  ++stats.auto_refreshes;
  if (auto r = refresh(); !r) log::debug("unwind pid {}: {}", pid, r.error().message);
  m = find(address);
  return m != nullptr && m->executable ? m : nullptr;
}

DwarfUnwinder::DwarfUnwinder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DwarfUnwinder::~DwarfUnwinder() = default;

Result<std::unique_ptr<DwarfUnwinder>> DwarfUnwinder::Create(int pid,
                                                             const UnwindOptions& options) {
  if (pid <= 0) return fail("invalid pid {}", pid);
  if (!elf::libelf_ready()) return fail("libelf: {}", elf_errmsg(-1));
  auto impl = std::make_unique<Impl>();
  impl->pid = pid;
  impl->options = options;
  impl->cache = options.cfi_cache ? options.cfi_cache : std::make_shared<CfiCache>();
  if (auto r = impl->init_live(); !r) return std::unexpected(r.error());
  return std::unique_ptr<DwarfUnwinder>(new DwarfUnwinder(std::move(impl)));
}

Result<std::unique_ptr<DwarfUnwinder>> DwarfUnwinder::CreateOffline(std::string_view maps_text,
                                                                    const PathResolver& resolve,
                                                                    const UnwindOptions& options) {
  auto entries = parse_proc_maps(maps_text);
  if (!entries) return std::unexpected(entries.error());
  if (!elf::libelf_ready()) return fail("libelf: {}", elf_errmsg(-1));
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->cache = options.cfi_cache ? options.cfi_cache : std::make_shared<CfiCache>();
  impl->opener = [resolve](const MapEntry& e) -> Result<symbolize::OpenedObject> {
    std::string local = resolve(e.file_path());
    if (local.empty()) return fail("no local copy of {}", e.file_path());
    UniqueFd fd(::open(local.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return fail_errno("cannot open " + local);
    return symbolize::OpenedObject{std::move(fd), local};
  };
  impl->apply(*entries);
  return std::unique_ptr<DwarfUnwinder>(new DwarfUnwinder(std::move(impl)));
}

Result<void> DwarfUnwinder::refresh() { return impl_->refresh(); }

const StackEntry* DwarfUnwinder::stack(uint32_t stack_id) const {
  return impl_->stacks.get(stack_id);
}

UnwindStats DwarfUnwinder::stats() const {
  UnwindStats s = impl_->stats;
  s.distinct_stacks = impl_->stacks.size();
  return s;
}

int DwarfUnwinder::pid() const { return impl_->pid; }

Result<UnwoundStack> DwarfUnwinder::unwind(const lw_stack_snapshot& snap) {
  const auto t0 = Clock::now();
  Impl& im = *impl_;
  if (snap.stack_size > LW_SNAPSHOT_MAX) {
    return fail("snapshot stack_size {} exceeds {}", snap.stack_size, LW_SNAPSHOT_MAX);
  }
  if (im.pid != 0 && snap.tgid != 0 && static_cast<int>(snap.tgid) != im.pid) {
    return fail("snapshot of process {} given to the unwinder of process {}", snap.tgid, im.pid);
  }
  UnwoundStack out;
  SnapshotMemory mem(snap, im);
  RegisterSet regs;
  regs.set(kRegRip, snap.ip);
  regs.set(kRegRsp, snap.sp);
  regs.set(kRegRbp, snap.bp);
  bool exact = (snap.flags & LW_SNAPSHOT_IP_EXACT) != 0;
  out.frames.reserve(32);
  out.frames.push_back(snap.ip);

  auto stop = [&](Truncation t, std::string reason) {
    out.truncated = true;
    out.truncation = t;
    out.reason = std::move(reason);
  };
  auto lookup_address = [](uint64_t pc, bool exact_pc) { return exact_pc ? pc : pc - 1; };

  const Mapping* m = im.find_code(lookup_address(snap.ip, exact));
  if (m == nullptr) {
    stop(Truncation::kNoMapping, fmt::format("ip {:#x} is in no executable mapping", snap.ip));
  }
  while (m != nullptr) {
    const uint64_t pc = regs.value[kRegRip];
    const uint64_t lookup = lookup_address(pc, exact);
    const UnwindRow* row = nullptr;
    std::string why;
    if (m->object != nullptr) {
      ++im.stats.row_lookups;
      uint64_t hits = m->object->stats().row_cache_hits;
      row = m->object->row_for(lookup - m->bias, &why);
      im.stats.row_cache_hits += m->object->stats().row_cache_hits - hits;
    } else if (!m->error.empty()) {
      why = m->error;
    } else {
      why = fmt::format("{} has no ELF file", mapping_name(*m));
    }

    StepResult next;
    bool via_frame_pointer = false;
    if (row != nullptr) {
      auto r = step(*row, regs, mem);
      if (!r) {
        const StepError& e = r.error();
        std::string detail = fmt::format("frame {} (pc {:#x} in {}): {}", out.frames.size() - 1,
                                         pc, mapping_name(*m), describe(e));
        if (e.kind == StepError::kMemory && e.value >= snap.sp &&
            e.value - snap.sp >= snap.stack_size) {
          stop(Truncation::kSnapshotTooSmall,
               fmt::format("{}: needs stack up to sp+{}, the snapshot has {} bytes", detail,
                           e.value - snap.sp + 8, snap.stack_size));
        } else if (e.kind == StepError::kMemory) {
          stop(Truncation::kBadMemory, detail);
        } else if (e.kind == StepError::kUnknownRegister) {
          stop(Truncation::kUnknownRegister, detail);
        } else {
          stop(Truncation::kBadCfi, detail);
        }
        break;
      }
      next = *r;
      if (next.outermost) break;  // complete
    } else if (im.options.frame_pointer_fallback && m->error.empty() && regs.has(kRegRbp) &&
               regs.value[kRegRbp] != 0) {
      // Only where CFI is known to be missing (an ELF without an entry for the pc, JIT or
      // other anonymous code), not for a file we could not open: that one probably has CFI,
      // and rbp used as a general register would give a wrong caller.
      const uint64_t bp = regs.value[kRegRbp];
      uint64_t saved[2];  // [bp] = caller's rbp, [bp + 8] = return address
      if (bp < regs.value[kRegRsp] || !mem.read(bp, saved, sizeof saved)) {
        stop(m->object == nullptr ? Truncation::kNoObject : Truncation::kNoCfi,
             fmt::format("frame {}: {}; rbp {:#x} is not a frame pointer in the snapshot",
                         out.frames.size() - 1, why, bp));
        break;
      }
      next.caller.set(kRegRip, saved[1]);
      next.caller.set(kRegRsp, bp + 16);
      next.caller.set(kRegRbp, saved[0]);
      via_frame_pointer = true;
    } else {
      stop(m->object == nullptr ? Truncation::kNoObject : Truncation::kNoCfi,
           fmt::format("frame {}: {}", out.frames.size() - 1, why));
      break;
    }

    const uint64_t ra = next.caller.value[kRegRip];
    if (ra == 0) break;  // the ABI's end marker: complete
    const bool signal = row != nullptr && row->signal_frame;
    // Each caller's frame lies above its callee's; a signal frame may come from another
    // stack (sigaltstack).
    if (!signal && next.caller.value[kRegRsp] <= regs.value[kRegRsp]) {
      stop(Truncation::kNoProgress,
           fmt::format("frame {}: caller's sp {:#x} is not above sp {:#x}", out.frames.size() - 1,
                       next.caller.value[kRegRsp], regs.value[kRegRsp]));
      break;
    }
    if (out.frames.size() >= im.options.max_frames) {
      stop(Truncation::kDepthLimit, fmt::format("{} frames", out.frames.size()));
      break;
    }
    // (The trampoline is at the start of its page: test ra itself, not ra - 1.)
    const Mapping* hijacked = im.find(ra);
    if (hijacked != nullptr && hijacked->path == "[uprobes]") {
      stop(Truncation::kNoObject, fmt::format("frame {}: {}", out.frames.size(), hijacked->error));
      break;
    }
    const Mapping* caller_mapping = im.find_code(lookup_address(ra, signal));
    if (caller_mapping == nullptr) {
      stop(Truncation::kNoMapping,
           fmt::format("frame {}: return address {:#x} is in no executable mapping",
                       out.frames.size(), ra));
      break;
    }
    out.frames.push_back(ra);
    if (via_frame_pointer) ++out.frame_pointer_frames;
    regs = next.caller;
    exact = signal;
    m = caller_mapping;
  }

  out.stack_bytes_used = static_cast<uint32_t>(mem.used());
  out.stack_id = im.stacks.intern(out.frames, out.truncated);
  UnwindStats& s = im.stats;
  ++s.stacks;
  if (out.truncated) {
    ++s.truncated;
    ++s.truncated_by[static_cast<size_t>(out.truncation)];
  } else {
    ++s.complete;
  }
  s.frames += out.frames.size();
  s.frame_pointer_frames += out.frame_pointer_frames;
  s.snapshot_bytes += snap.stack_size;
  s.stack_bytes_used += out.stack_bytes_used;
  s.max_stack_bytes_used = std::max<uint64_t>(s.max_stack_bytes_used, out.stack_bytes_used);
  s.unwind_ns += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  return out;
}

}  // namespace leakwatch::unwind
