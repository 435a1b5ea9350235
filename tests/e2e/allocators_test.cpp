// End-to-end allocator discovery: the same known leaks served by jemalloc, tcmalloc and
// mimalloc (preloaded and linked), by an allocator defined in the executable, by a static
// glibc, by a je_-prefixed API next to glibc, and by jemalloc at a path that exists only in
// the target's own mount namespace.  Exact mode: counts and bytes must match exactly.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"
#include "support/reliability.h"

namespace leakwatch::testing {
namespace {

const std::string kLibDir = "/usr/lib/x86_64-linux-gnu/";
const std::string kJemalloc = kLibDir + "libjemalloc.so.2";
const std::string kTcmalloc = kLibDir + "libtcmalloc_minimal.so.4";
const std::string kMimalloc = kLibDir + "libmimalloc.so.2";

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// `leakwatch memleak -c COMMAND -v ...` with extra environment variables for leakwatch.
// Why the preloaded-allocator tests skip in the sanitizer build (make test-asan): they hand
// LD_PRELOAD to leakwatch for its command, and a process built with ASan cannot start with
// another allocator preloaded ahead of ASan's runtime.  They run in every other build.
constexpr const char* kNoPreloadUnderAsan =
    "the sanitizer build's leakwatch cannot start with another allocator preloaded";

MemleakRun run_with_env(const std::vector<std::string>& env, const std::string& command,
                        const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"-v"};
  args.insert(args.end(), extra.begin(), extra.end());
  return memleak_command(command, args, env);
}

// ml_alloc's leaks (tests/fixtures/ml_alloc.cpp).
void expect_ml_alloc_leaks(const report::Report& r) {
  expect_exact_leak(r, "alloc_leak_malloc", 4, 1111);
  expect_exact_leak(r, "alloc_leak_calloc", 3, 777);
  expect_exact_leak(r, "alloc_leak_realloc", 1, 2222);
  expect_exact_leak(r, "alloc_leak_new", 5, 40);
  expect_exact_leak(r, "alloc_leak_new_array", 3, 100);
  EXPECT_TRUE(stacks_in(r, "alloc_balanced").empty()) << describe(r);
  for (const auto& [name, value] : r.lost) EXPECT_EQ(value, 0u) << name;
}

class Allocators : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  }
};

TEST_F(Allocators, JemallocPreloaded) {
  if (kSanitizedBuild) GTEST_SKIP() << kNoPreloadUnderAsan;
  auto run = run_with_env({"LD_PRELOAD=" + kJemalloc}, fixture("ml_alloc"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_ml_alloc_leaks(run.report);
  EXPECT_NE(run.result.err.find("libjemalloc.so.2 (LD_PRELOAD)"), std::string::npos) << run.result.err;
  EXPECT_NE(run.result.err.find("allocator jemalloc in libjemalloc.so.2 (mallctl): IN USE"), std::string::npos)
      << run.result.err;
}

TEST_F(Allocators, TcmallocMinimalPreloaded) {
  if (kSanitizedBuild) GTEST_SKIP() << kNoPreloadUnderAsan;
  auto run = run_with_env({"LD_PRELOAD=" + kTcmalloc}, fixture("ml_alloc"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_ml_alloc_leaks(run.report);
  EXPECT_NE(run.result.err.find("allocator tcmalloc in libtcmalloc_minimal.so.4 (tc_malloc): IN USE"),
            std::string::npos)
      << run.result.err;
}

TEST_F(Allocators, MimallocPreloaded) {
  if (kSanitizedBuild) GTEST_SKIP() << kNoPreloadUnderAsan;
  if (!exists(kMimalloc)) GTEST_SKIP() << "libmimalloc2.0 not installed";
  auto run = run_with_env({"LD_PRELOAD=" + kMimalloc}, fixture("ml_alloc"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_ml_alloc_leaks(run.report);
  EXPECT_NE(run.result.err.find("allocator mimalloc in libmimalloc.so.2 (mi_malloc): IN USE"), std::string::npos)
      << run.result.err;
}

// The allocator preloaded inside the command (`env LD_PRELOAD=...`, or a shell-style
// assignment) is the program's: the program is traced, planned with that environment, not env.
TEST_F(Allocators, PreloadGivenInsideTheCommand) {
  for (const std::string& command : {"env LD_PRELOAD=" + kJemalloc + " " + fixture("ml_alloc"),
                                     "LD_PRELOAD=" + kTcmalloc + " " + fixture("ml_alloc")}) {
    SCOPED_TRACE(command);
    auto run = run_with_env({}, command);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed) << run.result.err;
    expect_ml_alloc_leaks(run.report);
    EXPECT_EQ(run.result.err.find("which starts another program"), std::string::npos) << run.result.err;
    const std::string in_use = command.starts_with("env")
                                   ? "allocator jemalloc in libjemalloc.so.2 (mallctl): IN USE"
                                   : "allocator tcmalloc in libtcmalloc_minimal.so.4 (tc_malloc): IN USE";
    EXPECT_NE(run.result.err.find(in_use), std::string::npos) << run.result.err;
  }
}

TEST_F(Allocators, JemallocLinkedWithItsOwnApi) {
  auto run = run_with_env({}, fixture("ml_alloc_jemalloc"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_ml_alloc_leaks(run.report);
  expect_exact_leak(run.report, "je_leak_mallocx", 3, 1500);   // mallocx(size, flags)
  expect_exact_leak(run.report, "je_leak_rallocx", 2, 3000);   // rallocx(ptr, size, flags)
  EXPECT_TRUE(stacks_in(run.report, "je_balanced").empty()) << describe(run.report);  // dallocx, sdallocx
}

TEST_F(Allocators, TcmallocLinked) {
  auto run = run_with_env({}, fixture("ml_alloc_tcmalloc"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_ml_alloc_leaks(run.report);
}

TEST_F(Allocators, AllocatorDefinedInTheExecutable) {
  auto run = run_with_env({}, fixture("ml_static_alloc"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_exact_leak(run.report, "static_leak", 6, 999);
  expect_exact_leak(run.report, "static_leak_calloc", 2, 600);
  EXPECT_TRUE(stacks_in(run.report, "static_balanced").empty()) << describe(run.report);
  EXPECT_NE(run.result.err.find("allocator custom in ml_static_alloc (defines malloc): IN USE"), std::string::npos)
      << run.result.err;
}

TEST_F(Allocators, StaticGlibcExecutable) {
  auto run = run_with_env({}, fixture("ml_static"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_exact_leak(run.report, "static_glibc_leak", 4, 1111);
  EXPECT_TRUE(stacks_in(run.report, "static_glibc_balanced").empty()) << describe(run.report);
}

TEST_F(Allocators, StrippedStaticExecutableSaysSo) {
  auto run = run_with_env({}, fixture("ml_stripped_static"));
  EXPECT_EQ(run.result.exit_code, 1);
  EXPECT_NE(run.result.err.find("statically linked and has no symbol for malloc"), std::string::npos)
      << run.result.err;
  EXPECT_FALSE(run.parsed);
}

TEST_F(Allocators, MuslDynamicAndStatic) {
  if (!exists(fixture("ml_musl"))) GTEST_SKIP() << "musl-tools not installed";
  for (const char* name : {"ml_musl", "ml_musl_static"}) {
    SCOPED_TRACE(name);
    auto run = run_with_env({}, fixture(name));
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed) << run.result.err;
    expect_exact_leak(run.report, "musl_leak", 3, 1500);
    expect_exact_leak(run.report, "musl_leak_calloc", 2, 700);
    EXPECT_TRUE(stacks_in(run.report, "musl_balanced").empty()) << describe(run.report);
    EXPECT_NE(run.result.err.find("allocator musl in "), std::string::npos) << run.result.err;
  }
}

TEST_F(Allocators, PrefixedApiNextToGlibc) {
  auto run = run_with_env({}, fixture("ml_prefixed"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  expect_exact_leak(run.report, "prefixed_leak", 3, 1234);
  expect_exact_leak(run.report, "prefixed_leak_calloc", 2, 500);
  expect_exact_leak(run.report, "plain_leak", 2, 4321);
  EXPECT_TRUE(stacks_in(run.report, "prefixed_balanced").empty()) << describe(run.report);

  // --symbols-prefix overrides: only the je_ API.
  auto only = run_with_env({}, fixture("ml_prefixed"), {"--symbols-prefix", "je_"});
  ASSERT_EQ(only.result.exit_code, 0) << only.result.err;
  ASSERT_TRUE(only.parsed) << only.result.err;
  expect_exact_leak(only.report, "prefixed_leak", 3, 1234);
  EXPECT_TRUE(stacks_in(only.report, "plain_leak").empty()) << describe(only.report);
}

TEST_F(Allocators, JemallocAtAPathOnlyTheTargetsMountNamespaceHas) {
  // The target gets a private tmpfs over an empty directory, copies jemalloc there and
  // preloads it: from leakwatch's namespace that path is empty, only /proc/PID/root has it.
  std::string dir = temp_path("ns");
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  std::string lib = dir + "/libjemalloc-copy.so.2";
  std::string script = "mount -t tmpfs lwtest " + dir + " && cp " + kJemalloc + " " + lib +
                       " && LD_PRELOAD=" + lib + " exec " + fixture("ml_alloc") + " wait";
  Proc target({"unshare", "-m", "--propagation", "private", "sh", "-c", script});
  ASSERT_TRUE(target.wait_for("ready")) << "unshare/mount failed";
  EXPECT_FALSE(exists(lib)) << "the copy must not be visible from the test's namespace";

  std::string out = temp_path("ns_report.json");
  Proc lw({leakwatch(), "memleak", "-v", "-p", std::to_string(target.pid()), "-o", "0", "--format",
           "json", "--output", out});
  ASSERT_TRUE(lw.wait_for("Attaching to pid")) << lw.err();
  target.write("go\n");
  ASSERT_TRUE(target.wait_for("done"));
  lw.signal(SIGINT);
  int st = lw.wait();
  ASSERT_TRUE(WIFEXITED(st)) << lw.err();
  EXPECT_EQ(WEXITSTATUS(st), 0) << lw.err();
  target.close_stdin();
  target.wait();
  EXPECT_NE(lw.err().find(lib + " (LD_PRELOAD)"), std::string::npos) << lw.err();
  EXPECT_NE(lw.err().find("allocator jemalloc in libjemalloc-copy.so.2 (mallctl): IN USE"), std::string::npos)
      << lw.err();
  auto text = read_file(out);
  ASSERT_TRUE(text.has_value());
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep.has_value());
  expect_exact_leak(*rep, "alloc_leak_malloc", 4, 1111);
  expect_exact_leak(*rep, "alloc_leak_new", 5, 40);
  expect_exact_leak(*rep, "alloc_leak_realloc", 1, 2222);
}

// In-process mode (--inprocess, the default with -c --sample-bytes) wraps whatever
// allocator the program binds to; where it cannot see every allocation it is not used.
bool in_process(const report::Report& r) { return r.lost.contains("preload_set_full"); }

TEST_F(Allocators, InProcessWrapsPreloadedAndLinkedAllocators) {
  if (kSanitizedBuild) GTEST_SKIP() << kNoPreloadUnderAsan;
  for (const auto& [env, command] :
       {std::pair<std::vector<std::string>, std::string>{{"LD_PRELOAD=" + kJemalloc}, fixture("ml_alloc")},
        {{"LD_PRELOAD=" + kTcmalloc}, fixture("ml_alloc")},
        {{}, fixture("ml_alloc_tcmalloc")}}) {
    SCOPED_TRACE(command + (env.empty() ? "" : " with " + env[0]));
    auto run = run_with_env(env, command, {"--inprocess"});
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed) << run.result.err;
    EXPECT_TRUE(in_process(run.report)) << describe(run.report);
    expect_ml_alloc_leaks(run.report);
  }
}

TEST_F(Allocators, InProcessDefaultFallsBackWhereItWouldMissAllocations) {
  // jemalloc's own API (mallocx/rallocx) and musl programs: attach mode, same exact figures.
  {
    auto run = run_with_env({}, fixture("ml_alloc_jemalloc"), {"--sample-bytes", "1"});
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed) << run.result.err;
    EXPECT_FALSE(in_process(run.report));
    EXPECT_NE(run.result.err.find("does not wrap"), std::string::npos) << run.result.err;
    expect_exact_leak(run.report, "je_leak_mallocx", 3, 1500);
    expect_exact_leak(run.report, "je_leak_rallocx", 2, 3000);
  }
  if (exists(fixture("ml_musl"))) {
    auto run = run_with_env({}, fixture("ml_musl"), {"--sample-bytes", "1"});
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed) << run.result.err;
    EXPECT_FALSE(in_process(run.report));
    EXPECT_NE(run.result.err.find("not a glibc program"), std::string::npos) << run.result.err;
    EXPECT_FALSE(run.report.stacks.empty()) << describe(run.report);
  }
  // Asked for explicitly, the same obstacle is an error.
  auto run = run_with_env({}, fixture("ml_alloc_jemalloc"), {"--inprocess"});
  EXPECT_EQ(run.result.exit_code, 1);
  EXPECT_NE(run.result.err.find("--inprocess: "), std::string::npos) << run.result.err;
}

}  // namespace
}  // namespace leakwatch::testing
