// Bad input to `leakwatch memleak`: each gives a one-line error naming the problem, a
// non-zero exit, and leaves nothing attached.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

// Number of BPF links in the system (uprobe links included).
int bpf_link_count() {
  auto r = run_argv({"bpftool", "link", "show"});
  int n = 0;
  for (size_t pos = 0; (pos = r.out.find("\n", pos)) != std::string::npos; pos++)
    if (pos + 1 < r.out.size() && std::isdigit(static_cast<unsigned char>(r.out[pos + 1]))) n++;
  if (!r.out.empty() && std::isdigit(static_cast<unsigned char>(r.out[0]))) n++;
  return n;
}

struct Case {
  std::vector<std::string> args;
  std::string message;  // expected in the single error line
};

class MemleakErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  }
  void expect_error(const Case& c) {
    std::vector<std::string> argv{leakwatch(), "memleak"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    int links_before = bpf_link_count();
    auto r = run_argv(argv, std::chrono::seconds(30));
    SCOPED_TRACE(c.message);
    EXPECT_NE(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    EXPECT_EQ(r.out.find("Attaching"), std::string::npos) << r.out;
    EXPECT_EQ(bpf_link_count(), links_before) << "links left behind";
  }
};

TEST_F(MemleakErrors, NoSuchPid) { expect_error({{"-p", "999999"}, "no such process: 999999"}); }

TEST_F(MemleakErrors, CommandNotFound) {
  expect_error({{"-c", "no-such-command-xyz --flag"}, "command not found: no-such-command-xyz"});
}

TEST_F(MemleakErrors, CommandNotExecutable) {
  std::string path = temp_path("not-executable");
  { std::ofstream(path) << "just text\n"; }
  ::chmod(path.c_str(), 0644);
  expect_error({{"-c", path}, "cannot execute " + path});
}

TEST_F(MemleakErrors, ObjectWithoutAllocatorSymbols) {
  expect_error({{"-c", fixture("ml_short"), "-O", fixture("libml_plugin.so")},
                "no allocator function (malloc, ...) found in"});
}

TEST_F(MemleakErrors, MissingObject) {
  expect_error({{"-c", fixture("ml_short"), "-O", "/no/such/lib.so"}, "-O /no/such/lib.so: no such object"});
}

TEST_F(MemleakErrors, BadFlagValues) {
  expect_error({{"-p", "1", "-s", "0"}, "-s: sample rate must be >= 1"});
  expect_error({{"-p", "1", "--format", "xml"}, "unknown format 'xml'"});
  expect_error({{"-p", "1", "-z", "10x"}, "-z: unknown size unit"});
  expect_error({{"-p", "1", "-z", "100", "-Z", "10"}, "-z 100 is larger than -Z 10"});
  expect_error({{"-p", "1", "-s", "10", "--sample-bytes", "1M"}, "cannot be used together"});
  expect_error({{"-p", "1", "--attach", "fast"}, "--attach: unknown mode 'fast'"});
  expect_error({{"-p", "1", "0"}, "interval must be positive"});
  expect_error({{"-p", "1", "-c", "true"}, "-p and -c cannot be used together"});
}

TEST_F(MemleakErrors, UnknownFlagIsAUsageError) {
  auto r = run_argv({leakwatch(), "memleak", "--no-such-flag"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
}

TEST_F(MemleakErrors, KernelModeFlagsWithATarget) {
  expect_error({{"-p", "1", "--wa-missing-free"}, "apply to kernel mode (no -p, -c or --cgroup)"});
  expect_error({{"-c", "true", "--percpu"}, "apply to kernel mode (no -p, -c or --cgroup)"});
}

TEST_F(MemleakErrors, NoBtf) { expect_error({{"-p", "1", "--btf", "/no/such/btf"}, "--btf /no/such/btf: no such file"}); }

TEST_F(MemleakErrors, NotRoot) {
  auto r = run_argv({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", leakwatch(),
                     "memleak", "-p", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("needs root"), std::string::npos) << r.err;
}

TEST_F(MemleakErrors, CommandFailingNormallyIsNotAnError) {
  // `false` exits with status 1 by itself: a normal exit, so leakwatch succeeds.
  auto r = run_argv({leakwatch(), "memleak", "-c", "false"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Top 10 stacks with outstanding allocations"), std::string::npos) << r.out;
}

TEST_F(MemleakErrors, CommandKilledBySignalIsReported) {
  auto r = run_argv({leakwatch(), "memleak", "-c", "sh -c 'kill -9 $$'"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("killed by signal 9"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace leakwatch::testing
