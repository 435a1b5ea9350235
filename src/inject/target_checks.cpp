#include "inject/target_checks.h"

#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/atomic_file.h"
#include "common/fd.h"
#include "common/procfs.h"
#include "inject/ptrace_thread.h"
#include "elf/elf_dynamic.h"
#include "elf/elf_symbols.h"

namespace leakwatch::inject {
namespace {

std::string basename_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr uint64_t kCloneVfork = 0x4000;

// Whether a thread of `ppid` waits in vfork (or clone/clone3 with CLONE_VFORK) now.
bool parent_in_vfork(int ppid) {
  DIR* d = ::opendir(fmt::format("/proc/{}/task", ppid).c_str());
  if (!d) return false;
  bool vfork = false;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::istringstream in(read_text(fmt::format("/proc/{}/task/{}/syscall", ppid, e->d_name)));
    long nr = -1;
    std::string a0;
    if (!(in >> nr)) continue;
    in >> a0;
    uint64_t arg0 = a0.empty() ? 0 : std::stoull(a0, nullptr, 16);
    if (nr == SYS_vfork) vfork = true;
    if (nr == SYS_clone && (arg0 & kCloneVfork)) vfork = true;
    if (nr == SYS_clone3) {
      uint64_t flags = 0;
      if (read_memory(ppid, arg0, &flags, sizeof(flags)) == sizeof(flags) && (flags & kCloneVfork))
        vfork = true;
    }
  }
  ::closedir(d);
  return vfork;
}

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

}  // namespace

int read_ptrace_scope(const std::string& path) {
  std::ifstream in(path);
  int v = -1;
  if (!(in >> v)) return -1;
  return v;
}

bool have_cap_sys_ptrace() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[CAP_SYS_PTRACE / 32].effective & (1u << (CAP_SYS_PTRACE % 32))) != 0;
}

Result<void> check_ptrace_scope(int scope, bool cap_sys_ptrace) {
  if (scope >= 3)
    return fail("kernel.yama.ptrace_scope is 3: no process may be traced until reboot, so the "
                "sampling library cannot be injected");
  if ((scope == 1 || scope == 2) && !cap_sys_ptrace)
    return fail("kernel.yama.ptrace_scope is {} and leakwatch lacks CAP_SYS_PTRACE: it may not "
                "trace the process to inject the sampling library",
                scope);
  return {};
}

bool is_go_program(const std::string& exe, const std::vector<MapEntry>& maps) {
  for (const auto& m : maps)
    if (basename_of(m.path).starts_with("libgo.so")) return true;
  if (elf_version(EV_CURRENT) == EV_NONE) return false;
  UniqueFd fd(::open(exe.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return false;
  std::unique_ptr<Elf, ElfCloser> elf(elf_begin(fd.get(), ELF_C_READ, nullptr));
  if (!elf) return false;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf.get(), &shstrndx) != 0) return false;
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn; scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const char* name = elf_strptr(elf.get(), shstrndx, sh.sh_name);
    if (name && (std::strcmp(name, ".go.buildinfo") == 0 ||
                 std::strcmp(name, ".note.go.buildid") == 0 || std::strcmp(name, ".gopclntab") == 0))
      return true;
  }
  return false;
}

Result<void> check_target(int pid, const std::vector<MapEntry>& maps) {
  std::string status = read_text(fmt::format("/proc/{}/status", pid));
  if (status.empty()) return fail("no such process: {}", pid);
  int tgid = std::atoi(status_field(status, "Tgid").c_str());
  if (tgid != pid) return fail("{} is a thread of process {}: give the process id", pid, tgid);
  std::string state = status_field(status, "State");
  int tracer = std::atoi(status_field(status, "TracerPid").c_str());
  if (tracer != 0) {
    std::string comm = process_comm(tracer);
    return fail("pid {} is already traced by pid {}{}: only one tracer at a time, so the "
                "sampling library cannot be injected",
                pid, tracer, comm.empty() ? "" : " (" + comm + ")");
  }
  if (state.starts_with("T") || state.starts_with("t"))
    return fail("pid {} is stopped ({}): continue it first", pid, state);
  if (state.starts_with("Z") || state.starts_with("X")) return fail("pid {} is exiting", pid);
  int ppid = std::atoi(status_field(status, "PPid").c_str());
  if (ppid > 1 && parent_in_vfork(ppid)) {
    // A vfork child shares its parent's memory: the same maps.
    if (read_text(fmt::format("/proc/{}/maps", ppid)) == read_text(fmt::format("/proc/{}/maps", pid)))
      return fail("pid {} is a vfork child (it shares its parent's memory until it execs): "
                  "the sampling library cannot be injected into it",
                  pid);
  }
  std::string exe = fmt::format("/proc/{}/exe", pid);
  auto dyn = elf::read_dynamic_info(exe);
  if (dyn && !dyn->has_interp)
    return fail("pid {} runs a statically linked program: it has no dynamic loader to load the "
                "sampling library (trace it without --inject)",
                pid);
  if (is_go_program(exe, maps))
    return fail("pid {} is a Go program: its runtime owns its threads, stacks and signals, and "
                "Go code does not allocate with malloc (trace it without --inject)",
                pid);
  bool glibc = false, musl = dyn && dyn->interp.find("musl") != std::string::npos;
  for (const auto& m : maps) {
    auto base = basename_of(m.path);
    if (m.path.find("musl") != std::string::npos) musl = true;
    if (base == "libc.so.6") glibc = true;
  }
  if (musl)
    return fail("pid {} is a musl program: the sampling library is built for glibc (trace it "
                "without --inject)",
                pid);
  if (!glibc)
    return fail("pid {} does not run on glibc (no libc.so.6 mapped): the sampling library "
                "needs it (trace it without --inject)",
                pid);
  return {};
}

namespace {

// A directory in the process's mount namespace that only root (or this user) can change: in
// one anyone else could write to (or rename in, for a /tmp without the sticky bit; `sticky`
// allows a sticky one) the library could be swapped after it was placed.
Result<void> check_private_dir(int fd, const std::string& what, bool sticky) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail_errno("cannot stat " + what);
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return fail("{} is owned by uid {}, not by root: not used for the sampling library", what,
                st.st_uid);
  if ((st.st_mode & 022) != 0 && !(sticky && (st.st_mode & S_ISVTX) != 0))
    return fail("{} is writable by other users: not used for the sampling library", what);
  return {};
}

}  // namespace

Result<std::string> place_library(int pid, const std::string& library, std::string* how) {
  struct stat ours;
  if (::stat(library.c_str(), &ours) != 0) return fail_errno("stat " + library);
  const std::string root = fmt::format("/proc/{}/root", pid);
  struct stat theirs;
  // Not following a link at the last name: the process would resolve it in its own root.
  if (::fstatat(AT_FDCWD, (root + library).c_str(), &theirs, AT_SYMLINK_NOFOLLOW) == 0 &&
      theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino) {
    *how = "the process sees leakwatch's copy";
    return library;
  }
  // Another mount namespace (or chroot) without our file: a copy in its /tmp, named by a
  // hash of the contents so that later injections of the same build reuse it.  Every name
  // below /proc/PID/root is opened relative to a directory already opened without following
  // links: an absolute link planted there (the process's /tmp is writable by its users)
  // would otherwise resolve in leakwatch's root and have root write or trust any file.
  std::ifstream in(library, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return fail("cannot read {}", library);
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  const std::string dir_name = fmt::format("leakwatch-{:016x}", h);
  const std::string dir = "/tmp/" + dir_name;
  const std::string base = basename_of(library);
  const std::string path = dir + "/" + base;
  auto unreachable = [&](const std::string& why) {
    return fail("the sampling library is not reachable in pid {}'s mount namespace, and "
                "placing a copy in its {} failed: {}",
                pid, dir, why);
  };
  UniqueFd rootfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd.valid()) return unreachable(fmt::format("cannot open {}: {}", root, std::strerror(errno)));
  UniqueFd tmpfd(::openat(rootfd.get(), "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!tmpfd.valid()) return unreachable(fmt::format("its /tmp: {}", std::strerror(errno)));
  if (auto r = check_private_dir(tmpfd.get(), "its /tmp", true); !r) return unreachable(r.error().message);
  if (::mkdirat(tmpfd.get(), dir_name.c_str(), 0755) != 0 && errno != EEXIST)
    return unreachable(fmt::format("mkdir: {}", std::strerror(errno)));
  UniqueFd dirfd(::openat(tmpfd.get(), dir_name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dirfd.valid())
    return unreachable(fmt::format("{} (a symbolic link or not a directory?): {}", dir,
                                   std::strerror(errno)));
  if (auto r = check_private_dir(dirfd.get(), dir, false); !r)
    return unreachable(r.error().message);
  {
    UniqueFd fd(::openat(dirfd.get(), base.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st;
    if (fd.valid() && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_uid == 0 || st.st_uid == ::geteuid()) && (st.st_mode & 022) == 0 &&
        static_cast<size_t>(st.st_size) == bytes.size()) {
      std::string existing(bytes.size(), '\0');
      if (::pread(fd.get(), existing.data(), existing.size(), 0) ==
              static_cast<ssize_t>(existing.size()) &&
          existing == bytes) {
        *how = fmt::format("a copy in the process's mount namespace ({}) placed earlier", path);
        return path;
      }
    }
  }
  if (auto w = write_file_atomic_at(dirfd.get(), base, bytes, 0644, root + path); !w)
    return unreachable(w.error().message);
  *how = fmt::format("copied into the process's mount namespace as {}", path);
  return path;
}

std::vector<std::string> direct_allocator_calls(int pid, const std::vector<MapEntry>& maps) {
  static const char* kFunctions[] = {"malloc", "free", "calloc", "realloc", "posix_memalign",
                                     "aligned_alloc", "memalign", "_Znwm", "_ZdlPv"};
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& m : maps) {
    if (!m.file_backed() || !m.executable || !seen.insert(m.path).second) continue;
    auto base = basename_of(m.path);
    if (base == "libc.so.6" || base.starts_with("ld-linux") || base.starts_with("libjemalloc") ||
        base.starts_with("libtcmalloc") || base.starts_with("libmimalloc") ||
        base.starts_with("libstdc++") || base.starts_with("libleakwatch-preload"))
      continue;
    auto elf = elf::ElfObject::Open(target_path(pid, m.path));
    if (!elf) continue;
    std::vector<std::string> defined;
    for (const char* f : kFunctions)
      if (auto s = elf->find(f); s && s->dynamic && s->size > 0) defined.push_back(f);
    if (!defined.empty())
      out.push_back(fmt::format("{} defines {} itself: its own calls to them do not go through "
                                "the GOT and are not seen",
                                base, fmt::join(defined, ", ")));
  }
  out.push_back("libc's internal allocations that call __libc_malloc directly (rather than "
                "malloc through its PLT) and the dynamic loader's own allocations are not seen");
  out.push_back("function pointers to malloc/free taken before the injection keep calling the "
                "allocator directly; objects loaded by libc itself (NSS, iconv modules) are "
                "rewritten at the next dlopen through the program's GOT");
  return out;
}

}  // namespace leakwatch::inject
