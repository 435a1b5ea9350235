#include "alloc/link_order.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <set>
#include <sstream>

#include "common/fd.h"
#include "common/log.h"
#include "common/procfs.h"

namespace leakwatch::alloc {
namespace {

std::string basename_of(const std::string& p) { return p.substr(p.rfind('/') + 1); }

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reads target memory; fails when any byte is unreadable.
bool read_mem(int pid, uint64_t addr, void* buf, size_t len) {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  return n == static_cast<ssize_t>(len);
}

std::string read_c_string(int pid, uint64_t addr) {
  std::string out;
  char chunk[256];
  while (out.size() < 4096) {
    // A string may end close to the end of a mapping: read byte-exact chunks that do not
    // cross a page boundary.
    size_t room = 4096 - (addr % 4096);
    size_t len = std::min(sizeof chunk, room);
    if (!read_mem(pid, addr, chunk, len)) break;
    const void* nul = std::memchr(chunk, 0, len);
    if (nul) {
      out.append(chunk, static_cast<const char*>(nul) - chunk);
      return out;
    }
    out.append(chunk, len);
    addr += len;
  }
  return out;
}

// Value of an environment variable of another process ("" when unset or unreadable).
std::string environ_value(int pid, const std::string& name) {
  std::string env = read_whole(fmt::format("/proc/{}/environ", pid));
  std::string key = name + "=";
  size_t pos = 0;
  while (pos < env.size()) {
    size_t end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    if (env.compare(pos, key.size(), key) == 0) return env.substr(pos + key.size(), end - pos - key.size());
    pos = end + 1;
  }
  return "";
}

std::vector<std::string> ld_so_preload_file(const std::string& root) {
  std::string text = read_whole(root + "/etc/ld.so.preload");
  return elf::split_preload(text + " ");  // whitespace and colons separate entries
}

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

constexpr std::string_view kDeleted = " (deleted)";

std::string without_deleted(std::string path) {
  if (path.ends_with(kDeleted)) path.resize(path.size() - kDeleted.size());
  return path;
}

bool same_inode(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// Where leakwatch opens object `path` of process `pid`: through /proc/PID/root (the
// target's mount namespace), unless the file mapped is no longer the one at that path -- a
// library upgraded or removed while mapped ("PATH (deleted)" in the maps), or another
// inode there -- then through /proc/PID/map_files/, which opens the mapped file itself.
// Probes placed on the file at the path would never fire, and its symbols are another
// build's.
std::string open_path_for(int pid, const std::string& path, const std::vector<MapEntry>& maps) {
  const std::string open = target_path(pid, path);
  struct stat st;
  const bool there = ::stat(open.c_str(), &st) == 0;
  for (const auto& m : maps) {
    const bool deleted = m.path.size() == path.size() + kDeleted.size() &&
                         m.path.starts_with(path) && m.path.ends_with(kDeleted);
    if (!deleted && m.path != path) continue;
    if (!deleted && there && st.st_ino == m.inode) return open;
    return fmt::format("/proc/{}/map_files/{:x}-{:x}", pid, m.start, m.end);
  }
  return open;
}

// The executable's path as the target sees it, and where leakwatch opens it.
Result<LinkedObject> executable_of(int pid) {
  char buf[4096];
  std::string link = fmt::format("/proc/{}/exe", pid);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) return fail_errno("cannot read " + link);
  std::string path = without_deleted(std::string(buf, static_cast<size_t>(n)));
  std::string open = target_path(pid, path);
  // Deleted, replaced or unreachable: the magic link still opens the file that runs.
  if (!same_inode(open, link)) open = link;
  return LinkedObject{path, open, "executable"};
}

// Approximation when the link map cannot be read: executable, LD_PRELOAD (from the
// process's environment), then DT_NEEDED breadth first among the mapped objects, then any
// other mapped object in address order (dlopen'ed ones).
LinkOrder approximate_order(int pid, const LinkedObject& exe, const std::vector<MapEntry>& maps) {
  LinkOrder order;
  order.method = "approximated from LD_PRELOAD in /proc/PID/environ and DT_NEEDED of the mapped "
                 "objects (the link map could not be read)";
  std::vector<std::string> mapped;  // target paths, address order, unique
  for (const auto& m : maps) {
    std::string p = without_deleted(m.path);
    if (m.file_backed() && std::find(mapped.begin(), mapped.end(), p) == mapped.end())
      mapped.push_back(p);
  }
  std::set<std::string> taken;
  auto take = [&](const std::string& p, const std::string& why) {
    if (!taken.insert(p).second) return false;
    order.objects.push_back({p, open_path_for(pid, p, maps), why});
    return true;
  };
  take(exe.path, "executable");
  order.objects[0].open_path = exe.open_path;
  auto match_mapped = [&](const std::string& name) -> std::string {
    for (const auto& p : mapped)
      if (p == name || basename_of(p) == basename_of(name)) return p;
    return "";
  };
  std::deque<std::string> queue{exe.path};
  for (const auto& pre : elf::split_preload(environ_value(pid, "LD_PRELOAD"))) {
    std::string p = match_mapped(pre);
    if (!p.empty() && take(p, "LD_PRELOAD")) queue.push_back(p);
  }
  for (const auto& pre : ld_so_preload_file(fmt::format("/proc/{}/root", pid))) {
    std::string p = match_mapped(pre);
    if (!p.empty() && take(p, "/etc/ld.so.preload")) queue.push_back(p);
  }
  while (!queue.empty()) {
    std::string cur = queue.front();
    queue.pop_front();
    auto info = elf::read_dynamic_info(target_path(pid, cur));
    if (!info) continue;
    for (const auto& need : info->needed) {
      std::string p = match_mapped(need);
      if (!p.empty() && take(p, "DT_NEEDED of " + basename_of(cur))) queue.push_back(p);
    }
  }
  for (const auto& p : mapped) take(p, "mapped (loaded later)");
  return order;
}

}  // namespace

Result<std::vector<std::string>> read_link_map(int pid) {
  // auxv: AT_PHDR is where the executable's program headers are mapped.
  std::string auxv = read_whole(fmt::format("/proc/{}/auxv", pid));
  uint64_t at_phdr = 0, at_phnum = 0;
  for (size_t off = 0; off + 16 <= auxv.size(); off += 16) {
    uint64_t type, val;
    std::memcpy(&type, auxv.data() + off, 8);
    std::memcpy(&val, auxv.data() + off + 8, 8);
    if (type == AT_PHDR) at_phdr = val;
    if (type == AT_PHNUM) at_phnum = val;
  }
  if (at_phdr == 0 || at_phnum == 0 || at_phnum > 256) return fail("pid {}: no AT_PHDR in auxv", pid);
  std::vector<Elf64_Phdr> phdrs(at_phnum);
  if (!read_mem(pid, at_phdr, phdrs.data(), phdrs.size() * sizeof(Elf64_Phdr)))
    return fail_errno(fmt::format("pid {}: cannot read its program headers", pid));
  uint64_t bias = 0, dyn_vaddr = 0;
  bool have_phdr = false;
  for (const auto& ph : phdrs) {
    if (ph.p_type == PT_PHDR) {
      bias = at_phdr - ph.p_vaddr;
      have_phdr = true;
    }
    if (ph.p_type == PT_DYNAMIC) dyn_vaddr = ph.p_vaddr;
  }
  if (!have_phdr || dyn_vaddr == 0) return fail("pid {}: no PT_PHDR/PT_DYNAMIC", pid);
  // DT_DEBUG is filled by the dynamic linker with the address of its r_debug.
  uint64_t r_debug = 0;
  for (int i = 0; i < 1024; i++) {
    Elf64_Dyn d;
    if (!read_mem(pid, bias + dyn_vaddr + i * sizeof(Elf64_Dyn), &d, sizeof d))
      return fail("pid {}: cannot read its dynamic section", pid);
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag == DT_DEBUG) r_debug = d.d_un.d_ptr;
  }
  if (r_debug == 0) return fail("pid {}: DT_DEBUG not set (dynamic linker not done yet?)", pid);
  // struct r_debug { int r_version; struct link_map* r_map; ... }: r_map at offset 8.
  // struct link_map { l_addr; char* l_name; l_ld; link_map* l_next; link_map* l_prev; }
  uint64_t lm = 0;
  if (!read_mem(pid, r_debug + 8, &lm, sizeof lm)) return fail("pid {}: cannot read r_debug", pid);
  std::vector<std::string> names;
  std::set<uint64_t> seen;
  while (lm != 0 && names.size() < 4096 && seen.insert(lm).second) {
    uint64_t node[5];
    if (!read_mem(pid, lm, node, sizeof node)) return fail("pid {}: cannot read its link map", pid);
    names.push_back(node[1] ? read_c_string(pid, node[1]) : "");
    lm = node[3];
  }
  if (names.empty()) return fail("pid {}: empty link map", pid);
  return names;
}

Result<LinkOrder> process_link_order(int pid) {
  auto exe = executable_of(pid);
  if (!exe) return std::unexpected(exe.error());
  auto info = elf::read_dynamic_info(exe->open_path);
  if (!info) return std::unexpected(info.error());
  LinkOrder order;
  if (!info->has_interp && !info->has_dynamic) {
    order.static_executable = true;
    order.method = "statically linked executable (no dynamic linker)";
    order.objects.push_back(*exe);
    return order;
  }
  auto maps = read_proc_maps(pid);
  if (!maps) return std::unexpected(maps.error());

  auto names = read_link_map(pid);
  if (!names) {
    log::debug("link map of pid {}: {}", pid, names.error().message);
    return approximate_order(pid, *exe, *maps);
  }
  order.method = "read from the process's link map (r_debug)";
  order.objects.push_back(*exe);
  std::set<std::string> taken{exe->path};
  // The link map does not say why an object is there; LD_PRELOAD does for the first ones.
  auto preload = elf::split_preload(environ_value(pid, "LD_PRELOAD"));
  for (size_t i = 1; i < names->size(); i++) {
    const std::string& n = (*names)[i];
    if (n.empty() || n[0] != '/') continue;  // vdso ("linux-vdso.so.1") and pseudo entries
    if (!taken.insert(n).second) continue;
    std::string open = open_path_for(pid, n, *maps);
    if (!exists(open)) continue;
    bool preloaded = std::any_of(preload.begin(), preload.end(), [&](const std::string& p) {
      return p == n || basename_of(p) == basename_of(n);
    });
    order.objects.push_back({n, open, preloaded ? "LD_PRELOAD" : "link map"});
  }
  return order;
}

Result<LinkOrder> command_link_order(const std::string& exe, const std::string& ld_preload,
                                     const elf::LibrarySearch& search_in) {
  auto info = elf::read_dynamic_info(exe);
  if (!info) return std::unexpected(info.error());
  LinkOrder order;
  order.objects.push_back({exe, exe, "executable"});
  if (!info->has_interp && !info->has_dynamic) {
    order.static_executable = true;
    order.method = "statically linked executable (no dynamic linker)";
    return order;
  }
  order.method = "predicted from DT_NEEDED, LD_PRELOAD and /etc/ld.so.preload (the command has "
                 "not started yet)";
  elf::LibrarySearch search = search_in;
  search.exe_rpath = info->runpath.empty() ? info->rpath : std::vector<std::string>{};
  search.exe_dir = exe.substr(0, exe.rfind('/'));

  // Objects are known by the name that loaded them, their soname and their path (the
  // dynamic linker does not load an object twice).
  std::set<std::string> known{exe};
  std::set<std::pair<uint64_t, uint64_t>> inodes;  // one file reached by two paths (/lib, /usr/lib)
  auto file_id = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 ? std::pair<uint64_t, uint64_t>{st.st_dev, st.st_ino}
                                       : std::pair<uint64_t, uint64_t>{0, 0};
  };
  inodes.insert(file_id(exe));
  struct Pending {
    std::string path;
    elf::DynamicInfo info;
  };
  std::deque<Pending> queue{{exe, *info}};
  auto add = [&](const std::string& name, const std::string& path, const std::string& why) -> bool {
    if (known.count(name) || known.count(path)) return false;
    if (auto id = file_id(path); id.second != 0 && !inodes.insert(id).second) return false;
    auto di = elf::read_dynamic_info(path);
    known.insert(name);
    known.insert(path);
    if (di && !di->soname.empty()) known.insert(di->soname);
    order.objects.push_back({path, path, why});
    queue.push_back({path, di ? *di : elf::DynamicInfo{}});
    return true;
  };
  for (const auto& [names, why] : {std::pair{elf::split_preload(ld_preload), std::string("LD_PRELOAD")},
                                   std::pair{ld_so_preload_file(""), std::string("/etc/ld.so.preload")}}) {
    for (const auto& n : names) {
      auto p = elf::find_library(n, *info, exe, search);
      if (!p) {
        log::warn("{} {}: cannot be found (the dynamic linker will ignore it too)", why, n);
        continue;
      }
      add(n, *p, why);
    }
  }
  // musl's dynamic linker is its libc: a DT_NEEDED "libc.so" is the interpreter itself.
  const bool musl = info->interp.find("ld-musl") != std::string::npos;
  while (!queue.empty()) {
    Pending cur = std::move(queue.front());
    queue.pop_front();
    for (const auto& need : cur.info.needed) {
      if (known.count(need)) continue;
      if (musl && (need == "libc.so" || need.starts_with("libc.musl"))) {
        add(need, info->interp, "DT_NEEDED of " + basename_of(cur.path) + " (musl's dynamic linker)");
        continue;
      }
      auto p = elf::find_library(need, cur.info, cur.path, search);
      if (!p) {
        log::debug("DT_NEEDED {} of {}: not found", need, cur.path);
        continue;
      }
      add(need, *p, "DT_NEEDED of " + basename_of(cur.path));
    }
  }
  return order;
}

}  // namespace leakwatch::alloc
