// Hazards of the field: Go programs (built here with Debian's golang-go), seccomp-confined
// targets, a library replaced on disk while mapped, a target in another mount namespace
// whose library path names a different file than in leakwatch's.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"
#include "support/reliability.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class FieldHazards : public BpfTest {};

// Traces running `target` (which waits for "go", then prints `done_line`) with memleak -p
// and returns its JSON report.
std::optional<report::Report> trace_pid(Proc& target, const std::string& done_line,
                                        const std::vector<std::string>& extra = {},
                                        std::string* err = nullptr) {
  const std::string out = temp_path("hazard.json");
  std::vector<std::string> argv{leakwatch(), "memleak", "-p", std::to_string(target.pid()),
                                "-o", "0", "--format", "json", "--output", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("3600");
  Proc lw(argv);
  EXPECT_TRUE(lw.wait_for("Attaching")) << lw.err();
  target.write("go\n");
  EXPECT_TRUE(target.wait_for(done_line, 120s)) << "target did not finish";
  std::this_thread::sleep_for(200ms);
  lw.signal(SIGINT);
  int st = lw.wait(60s);
  if (err) *err = lw.err();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << lw.err();
  auto text = read_file(out);
  EXPECT_TRUE(text) << lw.err();
  if (!text) return std::nullopt;
  auto rep = report::read_json(*text);
  EXPECT_TRUE(rep);
  if (!rep) return std::nullopt;
  return std::move(*rep);
}

void expect_target_exits_cleanly(Proc& target) {
  target.close_stdin();
  int st = target.wait(30s);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
      << "target status " << st << (WIFSIGNALED(st) ? " signal " + std::to_string(WTERMSIG(st)) : "");
}

// --- Go ------------------------------------------------------------------------------

// Builds tests/fixtures/go/NAME with the go command (cached in the build tree).
std::string build_go(const std::string& name, bool cgo) {
  const std::string src = std::string(LEAKWATCH_SOURCE_DIR) + "/tests/fixtures/go/" + name + "/main.go";
  const std::string out = temp_path("go_" + name);
  const std::string cache = std::string(LEAKWATCH_FIXTURE_DIR) + "/go-cache";
  auto r = run_argv({"env", "GOCACHE=" + cache, "GOPATH=" + cache + "/path", "GO111MODULE=off",
                     "GOFLAGS=-buildvcs=false", std::string("CGO_ENABLED=") + (cgo ? "1" : "0"),
                     "go", "build", "-o", out, src},
                    300s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return r.exit_code == 0 ? out : "";
}

TEST_F(FieldHazards, GoProgramIsRefusedWithAClearMessage) {
  const std::string exe = build_go("pure", false);
  ASSERT_FALSE(exe.empty());
  Proc target({exe});
  ASSERT_TRUE(target.wait_for("ready"));
  auto r = run_argv({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "--duration", "2"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(exe + " is a Go program"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out.find("Attaching"), std::string::npos) << r.out;
  // Nothing was attached: the program does its recursive, stack-growing work unharmed.
  target.write("go\n");
  EXPECT_TRUE(target.wait_for("done", 60s));
  expect_target_exits_cleanly(target);
  // A command is refused the same way.
  auto c = run_argv({leakwatch(), "memleak", "-c", exe, "--duration", "2"});
  EXPECT_EQ(c.exit_code, 1) << c.err;
  EXPECT_NE(c.err.find("is a Go program"), std::string::npos) << c.err;
}

TEST_F(FieldHazards, CgoProgramIsTracedInItsCCodeAndKeepsWorking) {
  const std::string exe = build_go("cgo", true);
  ASSERT_FALSE(exe.empty());
  Proc target({exe});
  ASSERT_TRUE(target.wait_for("ready"));
  std::string err;
  // Goroutines recurse 1500 deep (their stacks grow and move) and call C at the bottom,
  // which allocates through the probed malloc, while the garbage collector runs.
  auto rep = trace_pid(target, "done", {}, &err);
  ASSERT_TRUE(rep);
  EXPECT_NE(err.find("is a Go program: only the allocations of its C code (cgo) are traced"),
            std::string::npos)
      << err;
  expect_exact_leak(*rep, "leak_from_c", 5, 3333);
  expect_target_exits_cleanly(target);
}

// --- seccomp -------------------------------------------------------------------------

void trace_confined(const std::string& mode, const std::vector<std::string>& extra) {
  SCOPED_TRACE(mode);
  Proc target({fixture("rl_seccomp"), mode});
  ASSERT_TRUE(target.wait_for("ready"));
  auto rep = trace_pid(target, "done", extra);
  ASSERT_TRUE(rep);
  expect_exact_leak(*rep, "leak_confined", 8, 1111);
  expect_target_exits_cleanly(target);
}

TEST_F(FieldHazards, SeccompAllowlistTargetSurvivesReturnProbes) {
  for (const char* attach : {"session", "classic"}) {
    SCOPED_TRACE(attach);
    trace_confined("allowlist", {"--attach", attach});
  }
}

TEST_F(FieldHazards, SeccompFilterDenyingTheUprobeSyscallsTargetSurvives) {
  for (const char* attach : {"session", "classic"}) {
    SCOPED_TRACE(attach);
    trace_confined("deny-probes", {"--attach", attach});
  }
}

TEST_F(FieldHazards, SeccompTargetWithThePreloadLibrarySurvivesItsHookProbes) {
  // The in-process library's hooks sit on 5-byte NOPs that the kernel turns into calls
  // to its uprobe trampoline (the uprobe system call on 6.18).
  const std::string lib = leakwatch().substr(0, leakwatch().rfind('/')) + "/libleakwatch-preload.so";
  for (const char* mode : {"allowlist", "deny-probes"}) {
    SCOPED_TRACE(mode);
    Proc target({"env", "LD_PRELOAD=" + lib, "LEAKWATCH_SAMPLE_BYTES=1", fixture("rl_seccomp"), mode});
    ASSERT_TRUE(target.wait_for("ready"));
    auto rep = trace_pid(target, "done");
    ASSERT_TRUE(rep);
    expect_exact_leak(*rep, "leak_confined", 8, 1111);
    expect_target_exits_cleanly(target);
  }
}

// --- files that are not what the path says -------------------------------------------

const std::string kJemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
const std::string kTcmalloc = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4";

void copy_file(const std::string& from, const std::string& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

// Replaces `path` by a copy of `with` (a new inode, as a package upgrade does): the old
// file stays mapped as "PATH (deleted)".
void replace_file(const std::string& path, const std::string& with) {
  copy_file(with, path + ".new");
  fs::rename(path + ".new", path);
}

TEST_F(FieldHazards, LibrariesReplacedOnDiskWhileMapped) {
  if (!fs::exists(kJemalloc) || !fs::exists(kTcmalloc)) GTEST_SKIP() << "needs libjemalloc2 and libtcmalloc-minimal4";
  const std::string dir = temp_path("replaced");
  fs::create_directories(dir);
  const std::string alloc = dir + "/liballoc.so", plugin = dir + "/librl.so";
  copy_file(kJemalloc, alloc);
  copy_file(fixture("librl_v1.so"), plugin);
  Proc target({"env", "LD_PRELOAD=" + alloc, fixture("rl_plugin_host"), plugin});
  ASSERT_TRUE(target.wait_for("loaded"));
  // Upgraded on disk: another allocator and another plugin at the same paths.
  replace_file(alloc, kTcmalloc);
  replace_file(plugin, fixture("librl_v2.so"));
  auto maps = read_file("/proc/" + std::to_string(target.pid()) + "/maps");
  ASSERT_TRUE(maps);
  ASSERT_NE(maps->find(alloc + " (deleted)"), std::string::npos) << *maps;
  std::string err;
  auto rep = trace_pid(target, "done", {"-v"}, &err);
  ASSERT_TRUE(rep);
  // Probed in the mapped (deleted) jemalloc, symbolized from the mapped (deleted) plugin.
  expect_exact_leak(*rep, "leak_v1_impl", 4, 1111);
  EXPECT_TRUE(stacks_in(*rep, "leak_v2_impl").empty()) << describe(*rep);
  EXPECT_NE(err.find("jemalloc"), std::string::npos) << err;
  expect_target_exits_cleanly(target);
}

TEST_F(FieldHazards, TargetInAnotherMountNamespaceWithASameNamedLibrary) {
  if (!fs::exists(kJemalloc) || !fs::exists(kTcmalloc)) GTEST_SKIP() << "needs libjemalloc2 and libtcmalloc-minimal4";
  const std::string dir = temp_path("mntns");
  fs::create_directories(dir + "/theirs");
  const std::string alloc = dir + "/liballoc.so", plugin = dir + "/librl.so";
  // Here: tcmalloc and plugin version 1.  In the target's namespace: jemalloc and version 2
  // at the same paths.
  copy_file(kTcmalloc, alloc);
  copy_file(fixture("librl_v1.so"), plugin);
  copy_file(kJemalloc, dir + "/theirs/liballoc.so");
  copy_file(fixture("librl_v2.so"), dir + "/theirs/librl.so");
  const std::string script = "mount --bind " + dir + "/theirs/liballoc.so " + alloc +
                             " && mount --bind " + dir + "/theirs/librl.so " + plugin +
                             " && exec env LD_PRELOAD=" + alloc + " " + fixture("rl_plugin_host") +
                             " " + plugin;
  Proc target({"unshare", "--mount", "--propagation", "private", "sh", "-c", script});
  auto loaded = target.wait_for("loaded", 30s);
  if (!loaded) {
    target.wait(5s);
    GTEST_SKIP() << "cannot make a mount namespace here: " << target.err();
  }
  std::string err;
  auto rep = trace_pid(target, "done", {"-v"}, &err);
  ASSERT_TRUE(rep);
  expect_exact_leak(*rep, "leak_v2_impl", 4, 2222);
  EXPECT_TRUE(stacks_in(*rep, "leak_v1_impl").empty()) << describe(*rep);
  EXPECT_NE(err.find("jemalloc"), std::string::npos) << err;
  expect_target_exits_cleanly(target);
}

}  // namespace
}  // namespace leakwatch::testing
