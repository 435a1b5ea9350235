// ProcessSymbolizer against a live fixture process (tests/fixtures/sym_target.cpp and
// libsym_plugin.c): names, modules, offsets, file:line, build ids, dlopen after Create,
// exit, deleted binaries and another mount namespace.  Needs root for map_files and the
// namespace test (skipped without it); everything else runs as any user who may ptrace
// its own children.
#include <fcntl.h>
#include <gelf.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/fd.h"
#include "common/procfs.h"
#include "symbolize/symbolizer.h"

namespace leakwatch::symbolize {
namespace {

const std::string kFixtureDir = LEAKWATCH_FIXTURE_DIR;
const std::string kTarget = kFixtureDir + "/sym_target";
const std::string kPlugin = kFixtureDir + "/libsym_plugin.so";
const std::string kTargetSource =
    std::string(LEAKWATCH_SOURCE_DIR) + "/tests/fixtures/sym_target.cpp";
const std::string kPluginSource =
    std::string(LEAKWATCH_SOURCE_DIR) + "/tests/fixtures/libsym_plugin.c";

// The fixture process, with pipes on its stdin and stdout; killed and reaped at the end.
class Child {
 public:
  // `in_child` runs in the child after the pipes are set up, before exec.
  explicit Child(const std::string& program, const std::string& plugin = kPlugin,
                 const std::function<void()>& in_child = {}) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      if (in_child) in_child();
      ::execl(program.c_str(), program.c_str(), plugin.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    stdin_.reset(in[1]);
    stdout_.reset(out[0]);
  }
  ~Child() { kill_and_reap(); }

  int pid() const { return pid_; }

  // Reads "name address" lines up to "ready".  Other lines are kept in `other`.
  std::map<std::string, uint64_t> read_until_ready(std::vector<std::string>* other = nullptr) {
    std::map<std::string, uint64_t> out;
    std::string line;
    while (read_line(line) && line != "ready") {
      size_t space = line.find(' ');
      if (space != std::string::npos && line.compare(space + 1, 2, "0x") == 0) {
        out[line.substr(0, space)] = std::strtoull(line.c_str() + space + 1, nullptr, 16);
      } else if (other != nullptr) {
        other->push_back(line);
      }
    }
    return out;
  }

  void send(const std::string& line) {
    std::string data = line + "\n";
    ASSERT_EQ(::write(stdin_.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  }

  void kill_and_reap() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  bool read_line(std::string& line) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{stdout_.get(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char chunk[4096];
      ssize_t n = ::read(stdout_.get(), chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  int pid_ = -1;
  UniqueFd stdin_, stdout_;
  std::string buffer_;
};

// The line marked "LINE:<name>" in a fixture source.
int marked_line(const std::string& source, const std::string& name) {
  std::ifstream in(source);
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.find("LINE:" + name + " ") != std::string::npos ||
        text.ends_with("LINE:" + name)) {
      return line;
    }
  }
  return -1;
}

// st_value of a symbol in an ELF file's .symtab, read independently of the symbolizer.
uint64_t elf_symbol_value(const std::string& path, const std::string& name) {
  elf_version(EV_CURRENT);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  Elf* elf = elf_begin(fd.get(), ELF_C_READ, nullptr);
  uint64_t value = 0;
  for (Elf_Scn* scn = nullptr; elf != nullptr && (scn = elf_nextscn(elf, scn)) != nullptr;) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_SYMTAB) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    for (size_t i = 0; data != nullptr && i < shdr.sh_size / shdr.sh_entsize; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
      const char* n = elf_strptr(elf, shdr.sh_link, sym.st_name);
      if (n != nullptr && name == n) value = sym.st_value;
    }
  }
  if (elf != nullptr) elf_end(elf);
  return value;
}

bool is_lower_hex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string copy_to(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  out.close();
  ::chmod(to.c_str(), 0755);
  return to;
}

std::unique_ptr<ProcessSymbolizer> create(int pid, SymbolizerOptions options = {}) {
  auto s = ProcessSymbolizer::Create(pid, options);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
  return s ? std::move(*s) : nullptr;
}

TEST(SymbolizeDemangle, ItaniumNamesComeOutReadable) {
  EXPECT_EQ(demangle("_ZN4shop13parse_requestEi"), "shop::parse_request(int)");
  EXPECT_EQ(demangle("_ZN4Cart8add_itemEi"), "Cart::add_item(int)");
  EXPECT_EQ(demangle("_Z5applyIiET_S0_"), "int apply<int>(int)");
  EXPECT_EQ(demangle("_Znwm"), "operator new(unsigned long)");
  EXPECT_EQ(demangle("_ZN4shop13parse_requestEi.cold"), "shop::parse_request(int) [clone .cold]");
}

TEST(SymbolizeDemangle, PlainAndInvalidNamesAreReturnedUnchanged) {
  EXPECT_EQ(demangle("malloc"), "malloc");
  EXPECT_EQ(demangle("i"), "i");  // a bare type code, not a symbol: not "int"
  EXPECT_EQ(demangle("_Z"), "_Z");
  EXPECT_EQ(demangle("_Zjunk!"), "_Zjunk!");
  EXPECT_EQ(demangle(""), "");
}

TEST(SymbolizeProcMaps, ParsesAllKindsOfLines) {
  const char* text =
      "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 393228    /usr/bin/sym target\n"
      "55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 393228    /usr/bin/sym target\n"
      "7f1e2a000000-7f1e2a001000 r-xp 00002000 fd:1a 12        /tmp/lib.so (deleted)\n"
      "7f1e2b000000-7f1e2b021000 rw-p 00000000 00:00 0 \n"
      "7ffd3a1f0000-7ffd3a1f2000 r-xp 00000000 00:00 0         [vdso]\n";
  auto maps = parse_proc_maps(text);
  ASSERT_TRUE(maps.has_value()) << maps.error().message;
  ASSERT_EQ(maps->size(), 5u);
  const MapEntry& exe = (*maps)[1];
  EXPECT_EQ(exe.start, 0x55d0c0a01000u);
  EXPECT_EQ(exe.end, 0x55d0c0a02000u);
  EXPECT_EQ(exe.offset, 0x1000u);
  EXPECT_TRUE(exe.readable && exe.executable && !exe.writable && !exe.shared);
  EXPECT_EQ(exe.dev_major, 8u);
  EXPECT_EQ(exe.inode, 393228u);
  EXPECT_EQ(exe.path, "/usr/bin/sym target");
  EXPECT_TRUE(exe.file_backed());
  const MapEntry& gone = (*maps)[2];
  EXPECT_EQ(gone.dev_major, 0xfdu);
  EXPECT_EQ(gone.dev_minor, 0x1au);
  EXPECT_TRUE(gone.deleted());
  EXPECT_EQ(gone.file_path(), "/tmp/lib.so");
  EXPECT_FALSE((*maps)[3].file_backed());
  EXPECT_EQ((*maps)[3].path, "");
  EXPECT_FALSE((*maps)[4].file_backed());
  EXPECT_EQ((*maps)[4].path, "[vdso]");

  EXPECT_FALSE(parse_proc_maps("55d0c0a00000 r--p 0 08:01 1 /x\n").has_value());
}

TEST(SymbolizeProcMaps, ParsesStatWithAwkwardCommand) {
  auto st = parse_proc_stat(
      "4242 (we) ird (name) S 1 4242 4242 0 -1 4194560 120 0 0 0 3 1 0 0 20 0 1 0 987654 "
      "10000 200 18446744073709551615\n");
  ASSERT_TRUE(st.has_value()) << st.error().message;
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->start_time_ticks, 987654u);
  EXPECT_FALSE(parse_proc_stat("4242 (x) S 1 2").has_value());
}

TEST(ProcessSymbolizer, FailsForMissingProcess) {
  auto s = ProcessSymbolizer::Create(0x3ffffff0);  // above pid_max's ceiling
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message.find("no such process"), std::string::npos) << s.error().message;
}

TEST(ProcessSymbolizer, SymbolizesFixtureLibraryAndLibcAndSurvivesExit) {
  Child child(kTarget);
  ASSERT_GT(child.pid(), 0);
  auto addrs = child.read_until_ready();
  child.send("dlopen");
  auto plugin = child.read_until_ready();
  ASSERT_EQ(addrs.size(), 4u);
  ASSERT_EQ(plugin.count("plugin_compute"), 1u);
  addrs["plugin_compute"] = plugin["plugin_compute"];

  auto sym = create(child.pid());
  ASSERT_TRUE(sym);

  struct Expected {
    const char* key;
    const char* function;
    const char* symtab_name;
    const std::string& binary;
    const std::string& source;
  };
  const Expected expected[] = {
      {"parse_request", "shop::parse_request(int)", "_ZN4shop13parse_requestEi", kTarget,
       kTargetSource},
      {"add_item", "Cart::add_item(int)", "_ZN4Cart8add_itemEi", kTarget, kTargetSource},
      {"plain_c_function", "plain_c_function", "plain_c_function", kTarget, kTargetSource},
      {"plugin_compute", "plugin_compute", "plugin_compute", kPlugin, kPluginSource},
  };
  for (const Expected& e : expected) {
    SCOPED_TRACE(e.key);
    uint64_t address = addrs[e.key];
    Symbol s = sym->symbolize(address);
    EXPECT_EQ(s.address, address);
    EXPECT_EQ(s.function, e.function);
    EXPECT_EQ(s.offset, 0u);
    EXPECT_EQ(s.module, e.binary.substr(e.binary.rfind('/') + 1));
    EXPECT_EQ(s.module_path, e.binary);
    EXPECT_EQ(s.file, e.source);
    EXPECT_EQ(s.line, marked_line(e.source, e.key));
    EXPECT_TRUE(is_lower_hex(s.build_id)) << s.build_id;
    // The load bias is right if the module offset is the symbol's link-time address.
    EXPECT_EQ(s.module_offset, elf_symbol_value(e.binary, e.symtab_name));

    Symbol inside = sym->symbolize(address + 5);
    EXPECT_EQ(inside.function, e.function);
    EXPECT_EQ(inside.offset, 5u);
    EXPECT_EQ(inside.module_offset, s.module_offset + 5);
  }

  Symbol libc = sym->symbolize(addrs["malloc"]);
  EXPECT_NE(libc.function.find("malloc"), std::string::npos) << libc.function;
  EXPECT_EQ(libc.offset, 0u);
  EXPECT_EQ(libc.module, "libc.so.6");
  EXPECT_TRUE(is_lower_hex(libc.build_id)) << libc.build_id;
  EXPECT_EQ(sym->symbolize(addrs["malloc"] + 5).offset, 5u);

  // Unmapped addresses: nothing, not even a module.
  Symbol nowhere = sym->symbolize(0x10);
  EXPECT_EQ(nowhere.function, "");
  EXPECT_EQ(nowhere.module, "");

  // Special mappings are named but not symbolized.
  for (const Mapping& m : sym->mappings()) {
    if (m.path != "[vdso]") continue;
    Symbol vdso = sym->symbolize(m.start + 16);
    EXPECT_EQ(vdso.module, "[vdso]");
    EXPECT_EQ(vdso.function, "");
  }

  // Repeats come from the cache.
  uint64_t hits = sym->stats().cache_hits;
  EXPECT_EQ(sym->symbolize(addrs["parse_request"]).function, "shop::parse_request(int)");
  EXPECT_EQ(sym->stats().cache_hits, hits + 1);

  child.kill_and_reap();
  ASSERT_TRUE(sym->refresh().has_value());
  EXPECT_TRUE(sym->stats().process_exited);
  EXPECT_FALSE(sym->mappings().empty());
  // Addresses never asked before still resolve from the kept objects.
  Symbol after = sym->symbolize(addrs["add_item"] + 7);
  EXPECT_EQ(after.function, "Cart::add_item(int)");
  EXPECT_EQ(after.offset, 7u);
  EXPECT_EQ(after.file, kTargetSource);
  Symbol plugin_after = sym->symbolize(addrs["plugin_compute"] + 3);
  EXPECT_EQ(plugin_after.function, "plugin_compute");
  EXPECT_EQ(plugin_after.module, "libsym_plugin.so");
  Symbol libc_after = sym->symbolize(addrs["malloc"] + 2);
  EXPECT_EQ(libc_after.module, "libc.so.6");
  EXPECT_EQ(libc_after.function, libc.function);
}

TEST(ProcessSymbolizer, FindsLibraryDlopenedAfterCreate) {
  Child child(kTarget);
  ASSERT_GT(child.pid(), 0);
  auto addrs = child.read_until_ready();
  ASSERT_EQ(addrs.size(), 4u);
  auto sym = create(child.pid());
  ASSERT_TRUE(sym);
  auto has_plugin = [&] {
    for (const Mapping& m : sym->mappings()) {
      if (m.path == kPlugin) return true;
    }
    return false;
  };
  EXPECT_FALSE(has_plugin());
  const SymbolizerStats before = sym->stats();

  child.send("dlopen");
  auto plugin = child.read_until_ready();
  ASSERT_EQ(plugin.count("plugin_compute"), 1u);

  // Outside every known mapping: symbolize() refreshes once by itself.
  Symbol s = sym->symbolize(plugin["plugin_compute"] + 4);
  EXPECT_EQ(s.function, "plugin_compute");
  EXPECT_EQ(s.offset, 4u);
  EXPECT_EQ(s.module, "libsym_plugin.so");
  EXPECT_EQ(s.line, marked_line(kPluginSource, "plugin_compute"));
  EXPECT_TRUE(has_plugin());
  SymbolizerStats after = sym->stats();
  EXPECT_EQ(after.auto_refreshes, before.auto_refreshes + 1);
  EXPECT_EQ(after.maps_reads, before.maps_reads + 1);
  // Only the new object was opened; the others kept their libdwfl modules.
  EXPECT_EQ(after.objects_opened, before.objects_opened + 1);
  EXPECT_EQ(after.objects_dropped, 0u);

  // An explicit refresh with nothing new re-reads the maps but opens nothing.
  ASSERT_TRUE(sym->refresh().has_value());
  EXPECT_EQ(sym->stats().maps_reads, after.maps_reads + 1);
  EXPECT_EQ(sym->stats().objects_opened, after.objects_opened);
  EXPECT_EQ(sym->symbolize(addrs["parse_request"]).function, "shop::parse_request(int)");
}

TEST(ProcessSymbolizer, RateLimitsRefreshesForUnknownAddresses) {
  Child child(kTarget);
  ASSERT_GT(child.pid(), 0);
  child.read_until_ready();
  SymbolizerOptions options;
  options.min_auto_refresh_interval = std::chrono::hours(1);
  auto sym = create(child.pid(), options);
  ASSERT_TRUE(sym);
  const uint64_t reads = sym->stats().maps_reads;
  for (uint64_t a = 0x1000; a < 0x1000 + 1000; ++a) EXPECT_EQ(sym->symbolize(a).module, "");
  EXPECT_EQ(sym->stats().auto_refreshes, 1u);
  EXPECT_EQ(sym->stats().maps_reads, reads + 1);
}

TEST(ProcessSymbolizer, GivesNamesWithoutSourceLinesWhenAsked) {
  Child child(kTarget);
  ASSERT_GT(child.pid(), 0);
  auto addrs = child.read_until_ready();
  ASSERT_EQ(addrs.size(), 4u);
  SymbolizerOptions options;
  options.source_lines = false;
  auto sym = create(child.pid(), options);
  ASSERT_TRUE(sym);
  Symbol s = sym->symbolize(addrs["parse_request"] + 2);
  EXPECT_EQ(s.function, "shop::parse_request(int)");
  EXPECT_EQ(s.offset, 2u);
  EXPECT_EQ(s.file, "");
  EXPECT_EQ(s.line, 0);
  Symbol libc = sym->symbolize(addrs["malloc"]);
  EXPECT_NE(libc.function.find("malloc"), std::string::npos) << libc.function;
  EXPECT_EQ(libc.file, "");
}

TEST(ProcessSymbolizer, UsesZeroBiasForNonPieExecutable) {
  const std::string nopie = kFixtureDir + "/sym_target_nopie";
  {
    UniqueFd fd(::open(nopie.c_str(), O_RDONLY | O_CLOEXEC));
    elf_version(EV_CURRENT);
    Elf* elf = elf_begin(fd.get(), ELF_C_READ, nullptr);
    GElf_Ehdr ehdr;
    ASSERT_NE(gelf_getehdr(elf, &ehdr), nullptr);
    ASSERT_EQ(ehdr.e_type, ET_EXEC) << "the fixture is meant to be linked -no-pie";
    elf_end(elf);
  }
  Child child(nopie);
  ASSERT_GT(child.pid(), 0);
  auto addrs = child.read_until_ready();
  ASSERT_EQ(addrs.size(), 4u);
  auto sym = create(child.pid());
  ASSERT_TRUE(sym);
  Symbol s = sym->symbolize(addrs["add_item"] + 3);
  EXPECT_EQ(s.function, "Cart::add_item(int)");
  EXPECT_EQ(s.offset, 3u);
  EXPECT_EQ(s.module, "sym_target_nopie");
  EXPECT_EQ(s.module_offset, addrs["add_item"] + 3);  // linked where it runs
  EXPECT_EQ(s.file, kTargetSource);
}

// A stripped copy of the plugin whose DWARF and symbols live in a separate file found
// through .gnu_debuglink (in the .debug/ directory next to it): its build id is unknown to
// /usr/lib/debug, so only the debuglink search can find it.
TEST(ProcessSymbolizer, ReadsSeparateDebugFileThroughDebuglink) {
  if (std::system("command -v objcopy >/dev/null 2>&1") != 0) GTEST_SKIP() << "no objcopy";
  char dir_template[] = "/tmp/lw_sym_dbg_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string stripped = dir + "/libsym_plugin.so";
  const std::string debug = dir + "/.debug/libsym_plugin.so.debug";
  ASSERT_EQ(::mkdir((dir + "/.debug").c_str(), 0755), 0);
  // --add-gnu-debuglink records the basename and the file's CRC.
  const std::string cmd = "objcopy --only-keep-debug " + kPlugin + " " + debug +
                          " && cd " + dir + "/.debug && objcopy --strip-all" +
                          " --add-gnu-debuglink=libsym_plugin.so.debug " + kPlugin + " " +
                          stripped;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  Child child(kTarget, stripped);
  ASSERT_GT(child.pid(), 0);
  child.read_until_ready();
  auto sym = create(child.pid());
  ASSERT_TRUE(sym);
  child.send("dlopen");
  auto plugin = child.read_until_ready();
  ASSERT_EQ(plugin.count("plugin_compute"), 1u);
  Symbol s = sym->symbolize(plugin["plugin_compute"] + 1);
  EXPECT_EQ(s.function, "plugin_compute");
  EXPECT_EQ(s.module_path, stripped);
  EXPECT_EQ(s.file, kPluginSource);
  EXPECT_EQ(s.line, marked_line(kPluginSource, "plugin_compute"));
  child.kill_and_reap();
  EXPECT_EQ(std::system(("rm -rf " + dir).c_str()), 0);
}

TEST(ProcessSymbolizer, ResolvesDeletedExecutableThroughMapFiles) {
  if (::geteuid() != 0) GTEST_SKIP() << "map_files needs root";
  char dir_template[] = "/tmp/lw_sym_del_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string copy = copy_to(kTarget, dir + "/sym_target_copy");
  Child child(copy);
  ASSERT_GT(child.pid(), 0);
  auto addrs = child.read_until_ready();
  ::unlink(copy.c_str());
  ::rmdir(dir.c_str());
  ASSERT_EQ(addrs.size(), 4u);

  auto sym = create(child.pid());
  ASSERT_TRUE(sym);
  Symbol s = sym->symbolize(addrs["parse_request"]);
  EXPECT_EQ(s.function, "shop::parse_request(int)");
  EXPECT_EQ(s.module, "sym_target_copy");
  EXPECT_EQ(s.module_path, copy + " (deleted)");
  EXPECT_EQ(s.line, marked_line(kTargetSource, "parse_request"));
  bool via_map_files = false;
  for (const Mapping& m : sym->mappings()) {
    if (m.deleted) via_map_files = m.opened_path.find("/map_files/") != std::string::npos;
  }
  EXPECT_TRUE(via_map_files);
}

TEST(ProcessSymbolizer, ResolvesProcessInAnotherMountNamespace) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a mount namespace";
  char dir_template[] = "/tmp/lw_sym_ns_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string inside = dir + "/sym_target_ns";
  // The child mounts a tmpfs over `dir` that only its namespace sees, and runs a copy of
  // the fixture from it: the path in its maps does not exist in ours.
  Child child(inside, kPlugin, [&] {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64m") != 0) {
      std::printf("namespace-failed\nready\n");
      std::fflush(stdout);
      ::_exit(0);
    }
    copy_to(kTarget, inside);
  });
  ASSERT_GT(child.pid(), 0);
  std::vector<std::string> other;
  auto addrs = child.read_until_ready(&other);
  if (!other.empty() && other[0] == "namespace-failed") {
    ::rmdir(dir.c_str());
    GTEST_SKIP() << "cannot create a mount namespace here";
  }
  ASSERT_EQ(addrs.size(), 4u);
  struct stat st{};
  EXPECT_NE(::stat(inside.c_str(), &st), 0);  // not visible from here

  auto sym = create(child.pid());
  ASSERT_TRUE(sym);
  Symbol s = sym->symbolize(addrs["add_item"] + 1);
  EXPECT_EQ(s.function, "Cart::add_item(int)");
  EXPECT_EQ(s.offset, 1u);
  EXPECT_EQ(s.module, "sym_target_ns");
  EXPECT_FALSE(s.build_id.empty());
  const std::string root = "/proc/" + std::to_string(child.pid()) + "/root/";
  bool via_root = false;
  for (const Mapping& m : sym->mappings()) {
    if (m.path == inside) via_root = m.opened_path.starts_with(root);
  }
  EXPECT_TRUE(via_root);
  child.kill_and_reap();
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace leakwatch::symbolize
