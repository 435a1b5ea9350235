#include "alloc/allocator_plan.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "common/log.h"
#include "common/procfs.h"
#include "alloc/allocator_catalog.h"
#include "elf/elf_dynamic.h"
#include "elf/elf_symbols.h"

namespace leakwatch::alloc {
namespace {

std::string basename_of(const std::string& p) { return p.substr(p.rfind('/') + 1); }

uint64_t inode_of(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

struct Wanted {
  std::string name;
  lw_fn_kind kind;
  bool allocation_api;  // the C API (or a prefixed/vendor one), not mmap or C++
};

// One object of the search order, opened.
struct Candidate {
  LinkedObject obj;
  std::optional<elf::ElfObject> elf;
  bool executable = false;
  AllocatorIdentity id;
  std::optional<std::map<uint64_t, std::string>> got;  // loaded on demand

  const std::map<uint64_t, std::string>& got_imports() {
    if (!got) {
      auto g = elf::read_got_imports(obj.open_path);
      got = g ? std::move(*g) : std::map<uint64_t, std::string>{};
    }
    return *got;
  }
};

// A wanted name bound to a definition.
struct Binding {
  std::string name;
  lw_fn_kind kind;
  size_t cand;
  elf::ElfSymbol sym;
  bool own_calls_only = false;  // the executable's non-exported copy
};

// Whether `sym` of `c` is a definition the dynamic linker binds other objects' calls to.
bool exported(const elf::ElfSymbol& sym) {
  return sym.dynamic && sym.default_version && !sym.local;
}

std::vector<Wanted> wanted_names(const std::vector<Candidate>& cands, const std::string& prefix) {
  std::vector<Wanted> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& name, lw_fn_kind kind, bool api) {
    if (seen.insert(name).second) out.push_back({name, kind, api});
  };
  auto add_prefixed = [&](const std::string& p) {
    for (const auto& e : c_functions()) add(p + std::string(e.name), e.kind, true);
    for (const auto& e : jemalloc_functions()) add(p + std::string(e.name), e.kind, true);
  };
  // The standard names come first so that an alias is reported under them (malloc, not
  // tc_malloc; _Znwm, not mi_new).
  add_prefixed(prefix);
  for (const auto& e : map_functions()) add(std::string(e.name), e.kind, false);
  for (const auto& e : cxx_functions()) add(std::string(e.name), e.kind, false);
  if (prefix.empty()) {
    for (const auto& e : tcmalloc_functions()) add(std::string(e.name), e.kind, true);
    for (const auto& e : mimalloc_functions()) add(std::string(e.name), e.kind, true);
    for (const auto& c : cands)
      if (c.elf)
        for (const auto& p : jemalloc_prefixes(*c.elf, c.executable))
          if (!p.empty()) add_prefixed(p);
  }
  return out;
}

// Binds `name` as the dynamic linker would (see the header).  Returns every definition
// that receives calls: at most the executable's own copy plus the exported one.
std::vector<Binding> bind(const std::vector<Candidate>& cands, const Wanted& w, bool static_exe,
                          bool explicit_objects) {
  std::vector<Binding> out;
  for (size_t i = 0; i < cands.size(); i++) {
    const Candidate& c = cands[i];
    if (!c.elf) continue;
    auto sym = c.elf->find(w.name);
    if (!sym || sym->local) continue;
    if (explicit_objects) {
      out.push_back({w.name, w.kind, i, *sym, false});
      continue;
    }
    if (c.executable && (static_exe || !exported(*sym))) {
      // Calls inside the executable reach its own copy directly; other objects' calls
      // bind to the first exported definition further down the order.
      out.push_back({w.name, w.kind, i, *sym, !static_exe});
      if (static_exe) break;
      continue;
    }
    if (!exported(*sym)) continue;
    out.push_back({w.name, w.kind, i, *sym, false});
    break;
  }
  return out;
}

// The target of a function whose first instruction (after endbr64) is a jump: either an
// address in the object, or the name imported through a GOT slot (jmp *slot(%rip), or a jmp
// to a PLT stub that does it).
struct JumpTarget {
  std::optional<uint64_t> address;
  std::string import;
};

std::optional<size_t> skip_prefixes(const std::vector<uint8_t>& c) {
  size_t i = 0;
  if (c.size() >= 4 && c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa) i = 4;
  if (i < c.size() && c[i] == 0xf2) i++;  // bnd
  return i < c.size() ? std::optional<size_t>(i) : std::nullopt;
}

int32_t rel32(const std::vector<uint8_t>& c, size_t at) {
  uint32_t v = static_cast<uint32_t>(c[at]) | static_cast<uint32_t>(c[at + 1]) << 8 |
               static_cast<uint32_t>(c[at + 2]) << 16 | static_cast<uint32_t>(c[at + 3]) << 24;
  return static_cast<int32_t>(v);
}

std::optional<JumpTarget> tail_jump(Candidate& c, uint64_t vaddr, uint64_t size, int depth = 0) {
  auto code = c.elf->read_code(vaddr, std::min<uint64_t>(size ? size : 16, 16));
  if (!code) return std::nullopt;
  const auto& b = *code;
  auto i = skip_prefixes(b);
  if (!i) return std::nullopt;
  size_t k = *i;
  if (b[k] == 0xe9 && k + 5 <= b.size()) {
    uint64_t t = vaddr + k + 5 + static_cast<int64_t>(rel32(b, k + 1));
    if (depth == 0 && c.elf->names_at(t).empty()) {
      // Not a function start: a PLT stub, whose own first instruction is jmp *slot.
      if (auto via = tail_jump(c, t, 16, 1); via && !via->import.empty()) return via;
    }
    return JumpTarget{t, ""};
  }
  if (b[k] == 0xeb && k + 2 <= b.size())
    return JumpTarget{vaddr + k + 2 + static_cast<int8_t>(b[k + 1]), ""};
  if (b[k] == 0xff && k + 6 <= b.size() && b[k + 1] == 0x25) {
    uint64_t slot = vaddr + k + 6 + static_cast<int64_t>(rel32(b, k + 2));
    const auto& got = c.got_imports();
    if (auto it = got.find(slot); it != got.end()) return JumpTarget{std::nullopt, it->second};
  }
  return std::nullopt;
}

// The C++ runtimes whose operator new is known to be a loop around malloc (or
// aligned_alloc) and the new-handler: their calls are left to the allocation function.
bool cxx_runtime(const std::string& path) {
  const std::string base = basename_of(path);
  return base.starts_with("libstdc++.so") || base.starts_with("libc++.so");
}

// For an operator new of a C++ runtime: the allocation function it calls through the PLT
// (malloc, aligned_alloc, or another operator new), when that is the only allocation
// function it calls.  Empty otherwise.
std::string wrapped_allocation(Candidate& c, const elf::ElfSymbol& sym) {
  if (sym.size == 0 || sym.size > 512) return "";
  auto code = c.elf->read_code(sym.value, sym.size);
  if (!code) return "";
  std::string wrapped;
  for (const auto& call : call_sites(*code, sym.value)) {
    std::string import;
    if (call.slot) {
      const auto& got = c.got_imports();
      if (auto it = got.find(*call.slot); it != got.end()) import = it->second;
    } else if (call.target && c.elf->names_at(*call.target).empty()) {
      if (auto via = tail_jump(c, *call.target, 16, 1); via) import = via->import;
    } else if (call.target) {
      auto names = c.elf->names_at(*call.target);
      if (allocator_function_kind(names[0]) != LW_FN_NONE) return "";  // a direct call: not via a bound name
    }
    if (import.empty() || allocator_function_kind(import) == LW_FN_NONE) continue;
    if (!wrapped.empty() && wrapped != import) return "";
    wrapped = import;
  }
  return wrapped;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// Symbols that betray an allocator compiled into an executable even when its entry points
// are gone (inlined into their callers, or stripped away).
std::string allocator_internals(const elf::ElfObject& elf) {
  for (const auto& s : elf.symbols()) {
    std::string_view n = s.name;
    if (n.starts_with("je_arena_") || n.starts_with("je_tcache_") || n == "mallctl") return "jemalloc (" + s.name + ")";
    if (n.find("tcmalloc") != std::string_view::npos) return "tcmalloc (" + s.name + ")";
    if (n.starts_with("_mi_")) return "mimalloc (" + s.name + ")";
    if (n == "_int_malloc") return "glibc malloc (" + s.name + ")";
    if (n == "__libc_malloc_impl") return "musl malloc (" + s.name + ")";
  }
  return "";
}

// Go programs.  Go allocates from its own garbage-collected heap (arenas it maps itself),
// not through malloc, and moves a goroutine's stack to a bigger one as it grows: a return
// probe on a function running on a goroutine stack leaves the kernel's trampoline address
// in a frame the runtime copies and walks, which corrupts the program (the runtime aborts
// with "unexpected return pc").  Go code is therefore never probed.  The C code of a cgo
// program runs on the threads' system stacks (cgocall switches to them), where the usual
// probes on libc's allocator are safe: those are traced.
//
// A Go executable has a .go.buildinfo section (also when stripped of symbols).
bool is_go_program(const std::string& path) {
  if (elf_version(EV_CURRENT) == EV_NONE) return false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool go = false;
  if (Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr)) {
    size_t shstrndx = 0;
    if (elf_getshdrstrndx(elf, &shstrndx) == 0) {
      for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr && !go;
           scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == nullptr) continue;
        const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
        go = name != nullptr && (std::string_view(name) == ".go.buildinfo" ||
                                 std::string_view(name) == ".gopclntab");
      }
    }
    elf_end(elf);
  }
  ::close(fd);
  return go;
}

std::string go_refusal(const std::string& path) {
  return path + " is a Go program: Go allocates from its own garbage-collected heap, not "
                "malloc, and moves goroutine stacks, which return probes would corrupt, so "
                "leakwatch memleak never probes Go code (`leakwatch growth` shows where its "
                "memory grows)";
}

}  // namespace

lw_fn_kind allocator_function_kind(const std::string& name) {
  for (auto table : {c_functions(), map_functions(), cxx_functions(), jemalloc_functions(),
                     tcmalloc_functions(), mimalloc_functions()})
    for (const auto& f : table)
      if (f.name == name) return f.kind;
  return LW_FN_NONE;
}

Result<AllocatorDiscovery> discover_in_order(const LinkOrder& order, const std::string& prefix,
                                             bool explicit_objects) {
  AllocatorDiscovery d;
  std::vector<Candidate> cands;
  for (size_t i = 0; i < order.objects.size(); i++) {
    Candidate c;
    c.obj = order.objects[i];
    c.executable = !explicit_objects && i == 0 && c.obj.why == "executable";
    auto elf = elf::ElfObject::Open(c.obj.open_path);
    if (!elf) {
      if (explicit_objects) return std::unexpected(elf.error());
      log::debug("skipping {}: {}", c.obj.path, elf.error().message);
      continue;
    }
    c.elf.emplace(std::move(*elf));
    c.id = identify_allocator(*c.elf, c.obj.path, c.executable);
    cands.push_back(std::move(c));
  }
  if (cands.empty()) return fail("no readable object in the target");
  // Only C functions of a Go executable (cgo) may be probed: names the Go toolchain gives
  // its own functions contain a dot (runtime.mallocgc), C names never do.
  const bool go_exe = cands.front().executable && is_go_program(cands.front().obj.open_path);
  if (explicit_objects)
    for (const auto& c : cands)
      if (is_go_program(c.obj.open_path)) return fail("-O {}", go_refusal(c.obj.path));

  std::vector<std::string> listed;
  for (const auto& c : cands) listed.push_back(fmt::format("{} ({})", c.obj.path, c.obj.why));
  d.explanation.push_back(
      explicit_objects ? fmt::format("objects given with -O: {}", join(listed))
                       : fmt::format("objects in symbol-search order, {}: {}", order.method, join(listed)));

  // Bind every wanted name; group by object, aliases (same offset) once.
  const auto wanted = wanted_names(cands, prefix);
  std::vector<std::vector<Binding>> per_cand(cands.size());
  std::map<std::string, std::vector<std::pair<size_t, uint64_t>>> bound;  // name -> (cand, sym value)
  for (const auto& w : wanted) {
    for (auto& b : bind(cands, w, order.static_executable, explicit_objects)) {
      bound[w.name].emplace_back(b.cand, b.sym.value);
      per_cand[b.cand].push_back(std::move(b));
    }
  }

  // Build the sites.
  std::vector<ObjectPlan> plans(cands.size());
  std::vector<std::map<uint64_t, size_t>> site_at(cands.size());  // sym value -> site index
  for (size_t ci = 0; ci < cands.size(); ci++) {
    Candidate& c = cands[ci];
    ObjectPlan& p = plans[ci];
    p.path = c.obj.open_path;
    p.display_path = c.obj.path;
    p.inode = inode_of(c.obj.open_path);
    p.allocator = c.id.family;
    for (const auto& b : per_cand[ci]) {
      ProbeSite site;
      site.function = b.name;
      site.kind = b.kind;
      site.symbol_offset = b.sym.file_offset;
      if (auto it = site_at[ci].find(b.sym.value); it != site_at[ci].end()) {
        site.skipped_reason = "alias of " + p.sites[it->second].function + " (same address)";
        p.sites.push_back(std::move(site));
        continue;
      }
      if (b.sym.ifunc) {
        site.skipped_reason = "IFUNC resolver, not the function itself";
        p.sites.push_back(std::move(site));
        continue;
      }
      if (go_exe && ci == 0 && b.name.find('.') != std::string::npos) {
        site.skipped_reason = "Go code (return probes corrupt moving goroutine stacks)";
        p.sites.push_back(std::move(site));
        continue;
      }
      site_at[ci][b.sym.value] = p.sites.size();
      auto placement = plan_symbol_probe(*c.elf, b.sym);
      if (placement) site.placement = *placement;
      else site.placement.reason = "code not readable: probe at entry (" + placement.error().message + ")";
      p.sites.push_back(std::move(site));
    }
  }

  // Thunks: a function that only jumps to another probed function is left to that one
  // (counting it too would count one call twice: operator new[] -> operator new are the
  // same kind at the same stack depth).  Resolved in rounds so chains of thunks settle.
  // A site counts as covered when it is probed, or is itself a thunk left to a probed
  // function (sized delete -> delete -> free: the whole chain is left to free).
  auto active_at = [&](size_t ci, uint64_t value) {
    auto it = site_at[ci].find(value);
    if (it == site_at[ci].end()) return false;
    const std::string& why = plans[ci].sites[it->second].skipped_reason;
    return why.empty() || why.rfind("tail-jumps to ", 0) == 0 || why.rfind("wraps ", 0) == 0;
  };
  auto covered_name = [&](const std::string& name) {
    auto it = bound.find(name);
    if (it == bound.end()) return false;
    // Other objects' calls go to the exported definition: the last binding of the name.
    const auto& [ci, value] = it->second.back();
    return active_at(ci, value);
  };
  for (int round = 0; round < 4; round++) {
    bool changed = false;
    for (size_t ci = 0; ci < cands.size(); ci++) {
      for (auto& site : plans[ci].sites) {
        if (!site.skipped_reason.empty()) continue;
        auto sym = cands[ci].elf->find(site.function);
        if (!sym) continue;
        if (site.kind == LW_FN_NEW && cxx_runtime(cands[ci].obj.path)) {
          // One trap per allocation instead of four (entry and return of new, the nested
          // malloc's entry): the stack capture at malloc's return recovers new's caller.
          auto inner = wrapped_allocation(cands[ci], *sym);
          if (!inner.empty() && covered_name(inner)) {
            site.skipped_reason = "wraps " + inner + "@plt, probed where it binds (the caller of new is "
                                  "recovered from the stack)";
            changed = true;
            continue;
          }
        }
        auto t = tail_jump(cands[ci], sym->value, sym->size);
        if (!t) continue;
        std::string reason;
        if (!t->import.empty() && covered_name(t->import)) {
          reason = "tail-jumps to " + t->import + "@plt, probed where it binds";
        } else if (t->address && *t->address != sym->value && active_at(ci, *t->address)) {
          auto names = cands[ci].elf->names_at(*t->address);
          reason = "tail-jumps to " + (names.empty() ? std::string("another probed function") : names[0]) +
                   ", probed";
        }
        if (!reason.empty()) {
          site.skipped_reason = reason;
          changed = true;
        }
      }
    }
    if (!changed) break;
  }

  // Functions that allocate but fit no kind: listed as not probed, so -v says so.
  for (size_t ci = 0; ci < cands.size(); ci++) {
    if (cands[ci].id.family != "jemalloc" && cands[ci].id.family != "mimalloc") continue;
    for (const auto& u : unsupported_functions()) {
      std::string name = (cands[ci].id.family == "jemalloc" ? cands[ci].id.prefix : "") + std::string(u.name);
      auto sym = cands[ci].elf->find(name);
      if (!sym || sym->local) continue;
      ProbeSite site;
      site.function = name;
      site.symbol_offset = sym->file_offset;
      site.skipped_reason = std::string(u.why);
      plans[ci].sites.push_back(std::move(site));
    }
  }

  // Which allocators are there, and which are in use.
  std::string malloc_name = prefix + "malloc";
  auto binds_here = [&](size_t ci, const std::string& name) {
    auto it = bound.find(name);
    if (it == bound.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [&](const auto& b) { return b.first == ci; });
  };
  for (size_t ci = 0; ci < cands.size(); ci++) {
    const Candidate& c = cands[ci];
    bool defines_any_malloc = false;
    std::vector<std::string> api_here;
    for (const auto& b : per_cand[ci]) {
      bool api = std::any_of(wanted.begin(), wanted.end(),
                             [&](const Wanted& w) { return w.name == b.name && w.allocation_api; });
      if (api) api_here.push_back(b.name);
      if (b.name.ends_with("malloc") && api) defines_any_malloc = true;
    }
    bool defines_malloc_symbol = c.elf->find(malloc_name) && !c.elf->find(malloc_name)->local;
    if (c.id.family.empty() && !defines_any_malloc && !defines_malloc_symbol) continue;
    FoundAllocator fa;
    fa.family = c.id.family.empty() ? "custom" : c.id.family;
    fa.object = c.obj.path;
    fa.prefix = c.id.prefix;
    fa.evidence = c.id.evidence.empty() ? "defines " + malloc_name : c.id.evidence;
    fa.in_use = !api_here.empty();
    plans[ci].defines_malloc = !c.executable && (defines_malloc_symbol || !c.id.family.empty());
    if (plans[ci].allocator.empty()) plans[ci].allocator = fa.family;
    std::string line = fmt::format("allocator {} in {} ({})", fa.family, basename_of(fa.object), fa.evidence);
    if (binds_here(ci, malloc_name)) {
      bool own = c.executable && !order.static_executable && !explicit_objects &&
                 !exported(*c.elf->find(malloc_name));
      line += own ? ": IN USE for the executable's own calls (defined there, not exported)"
                  : explicit_objects ? ": probed (-O)"
                                     : ": IN USE, " + malloc_name + " binds here (first definition in search order)";
    } else if (!c.id.prefix.empty() && binds_here(ci, c.id.prefix + "malloc")) {
      line += ": IN USE through its " + c.id.prefix + "-prefixed API (" + c.id.prefix +
              "malloc binds here; the standard names are served elsewhere)";
    } else if (fa.in_use) {
      line += ": probed only for " + join(api_here) + " (not defined earlier in the search order)";
    } else {
      line += ": not used, " + malloc_name + " binds to an object earlier in the search order";
    }
    d.explanation.push_back(line);
    d.allocators.push_back(std::move(fa));
  }

  // One line per object with the functions probed there.
  for (size_t ci = 0; ci < cands.size(); ci++) {
    std::vector<std::string> on, off;
    for (const auto& s : plans[ci].sites) {
      if (s.skipped_reason.empty()) on.push_back(s.function);
      else off.push_back(s.function + " (" + s.skipped_reason + ")");
    }
    if (on.empty() && off.empty()) continue;
    d.explanation.push_back(fmt::format("probe in {}: {}", basename_of(cands[ci].obj.path),
                                        on.empty() ? "nothing" : join(on)));
    if (!off.empty()) d.explanation.push_back(fmt::format("  not probed there: {}", join(off, "; ")));
  }

  // Nothing to probe, or an allocator whose entry points cannot be seen: say so plainly.
  bool any_alloc = false;
  for (size_t ci = 0; ci < cands.size(); ci++)
    for (const auto& s : plans[ci].sites)
      if (s.skipped_reason.empty() && s.kind != LW_FN_FREE && s.kind != LW_FN_MUNMAP &&
          s.kind != LW_FN_MMAP && s.kind != LW_FN_MREMAP)
        any_alloc = true;
  const Candidate& exe = cands.front();
  std::string internals = exe.executable ? allocator_internals(*exe.elf) : "";
  if (go_exe && !any_alloc) return fail("{}", go_refusal(exe.obj.path));
  if (go_exe) {
    std::vector<std::string> where;
    for (size_t ci = 0; ci < cands.size(); ci++)
      if (std::any_of(plans[ci].sites.begin(), plans[ci].sites.end(),
                      [](const ProbeSite& s) { return s.skipped_reason.empty(); }))
        where.push_back(basename_of(cands[ci].obj.path));
    d.warnings.push_back(fmt::format(
        "{} is a Go program: only the allocations of its C code (cgo) are traced, in {}; "
        "Go's own garbage-collected heap is not seen (`leakwatch growth` shows where its "
        "memory grows)",
        exe.obj.path, join(where)));
  }
  if (!any_alloc) {
    if (explicit_objects)
    {
      std::vector<std::string> paths;
      for (const auto& c : cands) paths.push_back(c.obj.path);
      return fail("no allocator function ({}malloc, ...) found in {}", prefix, join(paths));
    }
    if (order.static_executable) {
      if (!internals.empty())
        return fail("{} is statically linked with {} but has no symbol for {}: its allocation "
                    "fast path is inlined into the callers (or the entry points were stripped), "
                    "so no allocator function can be probed",
                    exe.obj.path, internals, malloc_name);
      return fail("{} is statically linked and has no symbol for {} (stripped?): no allocator "
                  "function can be probed; rebuild it with symbols, or give -O and "
                  "--symbols-prefix for its allocator",
                  exe.obj.path, malloc_name);
    }
    return fail("no object defining {} found in the target", malloc_name);
  }
  if (!prefix.empty() && !bound.count(malloc_name))
    return fail("--symbols-prefix {}: no object in the target defines {}", prefix, malloc_name);
  if (exe.executable && !order.static_executable && !internals.empty() &&
      !binds_here(0, malloc_name))
    d.warnings.push_back(fmt::format(
        "{} contains {} but no {} of its own: allocations through its inlined fast path are "
        "not seen, only those that reach {}",
        exe.obj.path, internals, malloc_name, "the shared allocator"));

  for (size_t ci = 0; ci < cands.size(); ci++) {
    bool any_site = !plans[ci].sites.empty();
    if (any_site) d.objects.push_back(std::move(plans[ci]));
  }
  return d;
}

Result<AllocatorDiscovery> discover_allocators(const PlanRequest& req) {
  LinkOrder order;
  bool explicit_objects = !req.objects.empty();
  if (explicit_objects) {
    for (const auto& o : req.objects) {
      std::string p = req.pid > 0 ? target_path(req.pid, o) : o;
      struct stat st;
      if (::stat(p.c_str(), &st) != 0) return fail("-O {}: no such object", o);
      order.objects.push_back({o, p, "-O"});
    }
    order.method = "given with -O";
  } else if (req.pid > 0) {
    auto o = process_link_order(req.pid);
    if (!o) return fail("pid {}: {}", req.pid, o.error().message);
    order = std::move(*o);
  } else if (req.command_path.empty()) {
    // No process yet (an empty cgroup): this host's C and C++ runtimes, as a program
    // started here would load them.
    auto own = process_link_order(::getpid());
    if (!own) return std::unexpected(own.error());
    order.method = "this host's C and C++ runtime libraries (no target process yet)";
    for (size_t i = 1; i < own->objects.size(); i++) {
      std::string b = basename_of(own->objects[i].path);
      if (b.starts_with("libc.so") || b.starts_with("libstdc++.so")) order.objects.push_back(own->objects[i]);
    }
    if (order.objects.empty()) return fail("no C runtime library found in this process");
  } else {
    const char* pre = std::getenv("LD_PRELOAD");
    auto o = command_link_order(req.command_path, pre ? pre : "", elf::LibrarySearch::FromEnvironment());
    if (!o) return std::unexpected(o.error());
    order = std::move(*o);
  }
  auto d = discover_in_order(order, req.symbols_prefix, explicit_objects);
  // `-c "env LD_PRELOAD=... prog"` plans for env, not for prog, whose preloaded allocator
  // is then never probed.  The command inherits leakwatch's environment: export it there.
  static constexpr std::string_view kWrappers[] = {"env", "sh", "bash", "dash", "nice", "nohup",
                                                   "setsid", "taskset", "numactl", "stdbuf", "timeout"};
  std::string exe = basename_of(req.command_path);
  if (d && req.pid == 0 && !explicit_objects &&
      std::find(std::begin(kWrappers), std::end(kWrappers), exe) != std::end(kWrappers))
    d->warnings.push_back(fmt::format(
        "-c runs {}, which starts another program: its allocator is predicted for {} only; to "
        "preload an allocator, export LD_PRELOAD before running leakwatch (the command inherits "
        "its environment), or attach with -p once the program runs",
        exe, exe));
  return d;
}

Result<std::vector<ObjectPlan>> plan_allocator_probes(const PlanRequest& req) {
  auto d = discover_allocators(req);
  if (!d) return std::unexpected(d.error());
  for (const auto& line : d->explanation) log::info("{}", line);
  for (const auto& w : d->warnings) log::warn("{}", w);
  return std::move(d->objects);
}

}  // namespace leakwatch::alloc
