#include "probe/allocator_plan.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include "common/log.h"
#include "common/proc_maps.h"
#include "probe/elf_symbols.h"

namespace leakwatch::probe {
namespace {

struct NamedKind {
  std::string_view name;
  lw_fn_kind kind;
};

// C allocator entry points, probed in objects that define malloc.
constexpr NamedKind kCFunctions[] = {
    {"malloc", LW_FN_MALLOC},          {"calloc", LW_FN_CALLOC},
    {"realloc", LW_FN_REALLOC},        {"reallocarray", LW_FN_REALLOCARRAY},
    {"posix_memalign", LW_FN_POSIX_MEMALIGN}, {"aligned_alloc", LW_FN_ALIGNED_ALLOC},
    {"memalign", LW_FN_ALIGNED_ALLOC}, {"valloc", LW_FN_VALLOC},
    {"pvalloc", LW_FN_VALLOC},         {"free", LW_FN_FREE},
    {"mmap", LW_FN_MMAP},              {"mmap64", LW_FN_MMAP},
    {"munmap", LW_FN_MUNMAP},          {"mremap", LW_FN_MREMAP},
};

// C++ operators (Itanium ABI, 64-bit size_t), probed wherever they are defined.
constexpr NamedKind kCxxFunctions[] = {
    {"_Znwm", LW_FN_NEW},
    {"_Znam", LW_FN_NEW},
    {"_ZnwmRKSt9nothrow_t", LW_FN_NEW},
    {"_ZnamRKSt9nothrow_t", LW_FN_NEW},
    {"_ZnwmSt11align_val_t", LW_FN_NEW},
    {"_ZnamSt11align_val_t", LW_FN_NEW},
    {"_ZnwmSt11align_val_tRKSt9nothrow_t", LW_FN_NEW},
    {"_ZnamSt11align_val_tRKSt9nothrow_t", LW_FN_NEW},
    {"_ZdlPv", LW_FN_FREE},
    {"_ZdaPv", LW_FN_FREE},
    {"_ZdlPvm", LW_FN_FREE},
    {"_ZdaPvm", LW_FN_FREE},
    {"_ZdlPvSt11align_val_t", LW_FN_FREE},
    {"_ZdaPvSt11align_val_t", LW_FN_FREE},
    {"_ZdlPvmSt11align_val_t", LW_FN_FREE},
    {"_ZdaPvmSt11align_val_t", LW_FN_FREE},
    {"_ZdlPvRKSt9nothrow_t", LW_FN_FREE},
    {"_ZdaPvRKSt9nothrow_t", LW_FN_FREE},
    {"_ZdlPvSt11align_val_tRKSt9nothrow_t", LW_FN_FREE},
    {"_ZdaPvSt11align_val_tRKSt9nothrow_t", LW_FN_FREE},
};

std::optional<ElfSymbol> find_defined(const ElfObject& elf, const std::string& name) {
  auto s = elf.find(name);
  if (!s || s->value == 0) return std::nullopt;
  return s;
}

// A function whose first instruction (after endbr64) is an unconditional jmp only forwards
// to another function (libstdc++: operator delete -> free, operator new[] -> operator new).
// Probing it as well would count one call twice, so it is left to its target.
bool is_tail_jump_thunk(const ElfObject& elf, const ElfSymbol& sym) {
  auto code = elf.read_code(sym.value, std::min<uint64_t>(sym.size ? sym.size : 16, 16));
  if (!code || code->size() < 2) return false;
  const auto& c = *code;
  size_t i = 0;
  if (c.size() >= 4 && c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa) i = 4;
  return i < c.size() && (c[i] == 0xe9 || c[i] == 0xeb);
}

uint64_t inode_of(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

Result<ObjectPlan> plan_object(const std::string& open_path, const std::string& display_path,
                               const std::string& prefix, bool c_functions) {
  auto elf = ElfObject::Open(open_path);
  if (!elf) return std::unexpected(elf.error());
  ObjectPlan plan;
  plan.path = open_path;
  plan.display_path = display_path;
  plan.inode = inode_of(open_path);
  plan.defines_malloc = find_defined(*elf, prefix + "malloc").has_value();

  std::set<uint64_t> seen_offsets;  // aliases (memalign == aligned_alloc) are probed once
  auto add = [&](const std::string& name, lw_fn_kind kind, bool may_be_thunk) {
    auto sym = find_defined(*elf, name);
    if (!sym) return;
    ProbeSite site;
    site.function = name;
    site.kind = kind;
    site.symbol_offset = sym->file_offset;
    if (may_be_thunk && is_tail_jump_thunk(*elf, *sym)) {
      site.skipped_reason = "tail-jumps to another probed function";
      plan.sites.push_back(std::move(site));
      return;
    }
    if (!seen_offsets.insert(sym->file_offset).second) {
      site.skipped_reason = "alias of a function already probed";
      plan.sites.push_back(std::move(site));
      return;
    }
    auto placement = plan_symbol_probe(*elf, *sym);
    if (placement) {
      site.placement = *placement;
    } else {
      site.placement.reason = "code not readable: probe at entry (" + placement.error().message + ")";
    }
    plan.sites.push_back(std::move(site));
  };
  if (c_functions && plan.defines_malloc)
    for (const auto& f : kCFunctions) add(prefix + std::string(f.name), f.kind, false);
  for (const auto& f : kCxxFunctions) add(std::string(f.name), f.kind, true);
  return plan;
}

bool has_active_site(const ObjectPlan& p) {
  return std::any_of(p.sites.begin(), p.sites.end(),
                     [](const ProbeSite& s) { return s.skipped_reason.empty(); });
}

// Executable objects of this process (leakwatch itself): used for -c, where the target
// has not loaded its libraries yet; on one host the command resolves the same libraries.
std::vector<std::string> own_libraries() {
  std::vector<std::string> out;
  auto maps = read_proc_maps(::getpid());
  if (!maps) return out;
  for (const auto& m : *maps) {
    if (!m.executable() || !m.file_backed()) continue;
    std::string_view base = std::string_view(m.path).substr(m.path.rfind('/') + 1);
    if ((base.starts_with("libc.so") || base.starts_with("libstdc++.so")) &&
        std::find(out.begin(), out.end(), m.path) == out.end())
      out.push_back(m.path);
  }
  return out;
}

}  // namespace

lw_fn_kind allocator_function_kind(const std::string& name) {
  for (const auto& f : kCFunctions)
    if (f.name == name) return f.kind;
  for (const auto& f : kCxxFunctions)
    if (f.name == name) return f.kind;
  return LW_FN_NONE;
}

Result<std::vector<ObjectPlan>> plan_allocator_probes(const PlanRequest& req) {
  // (display path, open path), in the order the dynamic linker would search them:
  // the executable first, then the libraries.
  std::vector<std::pair<std::string, std::string>> candidates;
  std::set<uint64_t> inodes;
  auto consider = [&](const std::string& display, const std::string& open_path) {
    uint64_t ino = inode_of(open_path);
    if (ino == 0 || !inodes.insert(ino).second) return;
    candidates.emplace_back(display, open_path);
  };

  bool explicit_objects = !req.objects.empty();
  if (explicit_objects) {
    for (const auto& o : req.objects) {
      std::string p = req.pid > 0 ? target_path(req.pid, o) : o;
      struct stat st;
      if (::stat(p.c_str(), &st) != 0) return fail("-O {}: no such object", o);
      consider(o, p);
    }
  } else if (req.pid > 0) {
    auto maps = read_proc_maps(req.pid);
    if (!maps) return fail("cannot read the memory map of pid {}: {}", req.pid, maps.error().message);
    for (const auto& m : *maps)
      if (m.executable() && m.file_backed()) consider(m.path, target_path(req.pid, m.path));
  } else {
    if (!req.command_path.empty()) consider(req.command_path, req.command_path);
    for (const auto& lib : own_libraries()) consider(lib, lib);
  }

  std::vector<ObjectPlan> plans;
  for (const auto& [display, open_path] : candidates) {
    auto plan = plan_object(open_path, display, req.symbols_prefix, true);
    if (!plan) {
      if (explicit_objects) return std::unexpected(plan.error());
      log::debug("skipping {}: {}", display, plan.error().message);
      continue;
    }
    if (has_active_site(*plan)) plans.push_back(std::move(*plan));
  }

  bool any_malloc = std::any_of(plans.begin(), plans.end(),
                                [](const ObjectPlan& p) { return p.defines_malloc; });
  if (!any_malloc) {
    if (explicit_objects)
      return fail("no allocator symbols ({}malloc) found in {}", req.symbols_prefix,
                  fmt::join(req.objects, ", "));
    return fail("no object defining {}malloc found in the target", req.symbols_prefix);
  }
  return plans;
}

}  // namespace leakwatch::probe
