// What a hostile but fair new user tried: bad values that used to be taken silently (an
// empty -p tracing the kernel, -s -3 wrapping, nan intervals), a report file with a number
// beyond a double, output paths that are missing, links or devices, the -c command outliving
// a SIGKILLed leakwatch, a leak in a dlclose'd plugin.  Each gives one line naming the
// problem and a non-zero exit, or now does what the help says.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;

const std::string kBcc = std::string(LEAKWATCH_TEST_DATA) + "/report/bcc_memleak_output.txt";

std::string show(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

// One line on stderr containing `needle`, a non-zero exit, nothing traced.
void expect_rejected(const std::vector<std::string>& args, const std::string& needle) {
  std::vector<std::string> argv{leakwatch()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run_argv(argv, std::chrono::seconds(30));
  std::string cmd;
  for (const auto& a : args) cmd += " '" + a + "'";
  SCOPED_TRACE("leakwatch" + cmd);
  EXPECT_NE(r.exit_code, 0) << show(r);
  EXPECT_NE(r.err.find(needle), std::string::npos) << show(r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line:\n" << show(r);
  EXPECT_EQ(r.err.find("libbpf:"), std::string::npos) << show(r);
  EXPECT_EQ(r.out.find("Attaching"), std::string::npos) << show(r);
  EXPECT_EQ(r.out.find("Tracing"), std::string::npos) << show(r);
}

// ---------------------------------------------------------------------------------------
// Item: silent nonsense on the command line.  These are rejected before anything is
// attached, so they need no root (the checks come first).

TEST(HostileInput, EmptyOrZeroTargetIsNotKernelMode) {
  expect_rejected({"memleak", "-p", "0"}, "-p: not a valid pid: 0");
  expect_rejected({"memleak", "-p", ""}, "-p: not a valid pid");
  expect_rejected({"memleak", "-c", ""}, "-c: empty command");
  expect_rejected({"memleak", "-c", "   "}, "-c: empty command");
  expect_rejected({"growth", "-p", "0"}, "-p: not a valid pid: 0");
  expect_rejected({"growth", "-p", ""}, "-p: not a valid pid");
  expect_rejected({"growth", "-c", ""}, "-c: empty command");
}

TEST(HostileInput, NegativeValuesOfUnsignedOptionsDoNotWrap) {
  expect_rejected({"memleak", "-p", "1", "-s", "-3"}, "--sample-rate: must not be negative, got -3");
  expect_rejected({"memleak", "-p", "1", "--max-allocs", "-1"}, "--max-allocs: must not be negative");
  expect_rejected({"memleak", "-p", "1", "--max-stacks", "-1"}, "--max-stacks: must not be negative");
  expect_rejected({"growth", "-p", "1", "--sample-faults", "-2"}, "--sample-faults: must not be negative");
  expect_rejected({"growth", "-p", "1", "--max-stacks", "-2"}, "--max-stacks: must not be negative");
  expect_rejected({"report", kBcc, "-s", "-5"}, "--sample-rate: must not be negative, got -5");
}

TEST(HostileInput, NotANumberAndInfinityAreRejected) {
  for (const char* bad : {"nan", "inf", "1e999"}) {
    expect_rejected({"memleak", "-p", "1", bad}, std::string("interval: expected a finite number, got ") + bad);
    expect_rejected({"memleak", "-p", "1", "--duration", bad}, "--duration: expected a finite number");
    expect_rejected({"memleak", "-p", "1", "-o", bad}, "--older: expected a finite number");
    expect_rejected({"growth", "-p", "1", bad}, "interval: expected a finite number");
    expect_rejected({"growth", "-p", "1", "--duration", bad}, "--duration: expected a finite number");
    expect_rejected({"report", kBcc, "--alert-threshold", bad}, "--alert-threshold: expected a finite number");
  }
  expect_rejected({"memleak", "-p", "1", "1e300"}, "interval: at most");
  expect_rejected({"memleak", "-p", "1", "--duration", "1e300"}, "--duration: at most");
}

TEST(HostileInput, SizeRangeThatKeepsNothing) {
  expect_rejected({"memleak", "-p", "1", "-Z", "0"}, "-Z 0 keeps only zero-byte allocations");
  expect_rejected({"memleak", "-p", "1", "-z", "11", "-Z", "10"}, "-z 11 is larger than -Z 10");
}

TEST(HostileInput, HugeMapsGetAMemoryMessageNotTheBtfHint) {
  expect_rejected({"memleak", "-p", "1", "--max-allocs", "4000000000"},
                  "--max-allocs 4000000000: at most 268435456 entries (the kernel's limit for a "
                  "hash map; the maps would take about");
  expect_rejected({"memleak", "-p", "1", "--max-allocs", "200000000"},
                  "of kernel memory when full");
  expect_rejected({"growth", "-p", "1", "--max-stacks", "100000000"}, "of kernel memory when full");
}

TEST(HostileInput, BadOutputDirectoryIsFoundBeforeTracing) {
  const std::string marker = temp_path("command-ran");
  const std::string command = "sh -c 'touch " + marker + "'";
  const std::string file = temp_path("plain-file");
  ASSERT_TRUE(write_file_atomic(file, "x"));
  for (const std::string& out : {std::string("/no/such/dir/leaks.json"), file + "/leaks.json"}) {
    expect_rejected({"memleak", "-c", command, "--format", "json", "--output", out},
                    "--output " + out + ": ");
    expect_rejected({"growth", "-c", command, "--output", out}, "--output " + out + ": ");
    expect_rejected({"memleak", "--duration", "1", "--output", out}, "--output " + out + ": ");
    expect_rejected({"report", kBcc, "--output", out}, "--output " + out + ": ");
  }
  EXPECT_FALSE(fs::exists(marker)) << "the command ran before the output was checked";
  // A directory that exists but cannot be written, for a user who is not root.
  if (::geteuid() == 0) {
    std::string tmpl = (fs::temp_directory_path() / "lw-root-only-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    const std::string dir = tmpl;
    ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);  // others may look, not write
    RunResult r = run_argv({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            leakwatch(), "report", kBcc, "--output", dir + "/out.txt"});
    EXPECT_EQ(r.exit_code, 1) << show(r);
    EXPECT_NE(r.err.find("--output " + dir + "/out.txt: cannot create a file in " + dir +
                         ": Permission denied"),
              std::string::npos)
        << show(r);
    fs::remove_all(dir);
  }
}

// ---------------------------------------------------------------------------------------
// Report files: numbers beyond a double, missing stacks, damaged BCC text.

TEST(HostileInput, ReportWithANumberBeyondADoubleIsAnErrorNotACrash) {
  const std::string json = temp_path("overflow.json");
  ASSERT_TRUE(write_file_atomic(json, "{\"version\":1e999}"));
  expect_rejected({"report", json}, json + ": report JSON: number overflow parsing '1e999'");
  expect_rejected({"report", "--diff", json, json}, "number overflow parsing '1e999'");
  expect_rejected({"report", "--diff", kBcc, json}, "number overflow parsing '1e999'");
}

TEST(HostileInput, ReportWithoutStacksIsNotAnEmptyReport) {
  const std::string json = temp_path("nostacks.json");
  ASSERT_TRUE(write_file_atomic(json, "{\"version\": 1, \"target\": {\"pid\": 4}}"));
  expect_rejected({"report", json}, "missing \"stacks\"");
}

TEST(HostileInput, DamagedBccTextIsAnError) {
  auto text = read_file(kBcc);
  ASSERT_TRUE(text);
  std::string damaged = *text;
  size_t at = damaged.find("\t8192 bytes in 2 allocations");
  ASSERT_NE(at, std::string::npos);
  damaged.replace(at, 5, "\t8x92");
  const std::string path = temp_path("damaged.txt");
  ASSERT_TRUE(write_file_atomic(path, damaged));
  expect_rejected({"report", path}, "a stack's count line whose figures do not parse");
}

// ---------------------------------------------------------------------------------------
// Output files that are not regular files.

TEST(HostileInput, OutputToDevStdoutWritesThereAndLeavesTheLink) {
  RunResult r = run_argv({leakwatch(), "report", kBcc, "--format", "folded", "--output",
                          "/dev/stdout"});
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(r.out.find("leak_fn(unsigned long) 20480"), std::string::npos) << show(r);
  EXPECT_TRUE(fs::is_symlink("/dev/stdout"));
  EXPECT_FALSE(fs::exists("/dev/stdout.tmp." + std::to_string(0)));
}

TEST(HostileInput, OutputToAFifoIsWrittenInPlace) {
  const std::string fifo = temp_path("report.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(fifo);  // blocks until leakwatch opens it for writing
    std::stringstream ss;
    ss << in.rdbuf();
    got = ss.str();
  });
  RunResult r = run_argv({leakwatch(), "report", kBcc, "--format", "folded", "--output", fifo},
                         std::chrono::seconds(20));
  if (r.exit_code != 0) {
    // Unblock the reader if leakwatch never opened the FIFO.
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  reader.join();
  EXPECT_EQ(r.exit_code, 0) << show(r);
  EXPECT_NE(got.find("leak_fn(unsigned long) 20480"), std::string::npos) << got;
  struct stat st;
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

// ---------------------------------------------------------------------------------------
// Tracing (root and BTF).

class HostileTrace : public BpfTest {};

TEST_F(HostileTrace, BtfFileThatIsNotBtfIsNamed) {
  expect_rejected({"memleak", "-c", "true", "--btf", "/etc/passwd"},
                  "--btf /etc/passwd: not a BTF file");
  expect_rejected({"growth", "-c", "true", "--btf", "/etc/passwd"},
                  "--btf /etc/passwd: not a BTF file");
  expect_rejected({"memleak", "--duration", "1", "--btf", "/etc/passwd"},
                  "--btf /etc/passwd: not a BTF file");
}

// pid of the child of `parent` (the -c command), or -1.
pid_t child_of(pid_t parent) {
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) +
                   "/children");
  pid_t pid = -1;
  in >> pid;
  return pid;
}

bool gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() &&
         (line[close + 2] == 'Z' || line[close + 2] == 'X');
}

TEST_F(HostileTrace, CommandDiesWithLeakwatchEvenOnSigkill) {
  for (const char* sub : {"memleak", "growth"}) {
    SCOPED_TRACE(sub);
    Proc p({leakwatch(), sub, "-c", "sleep 1000"});
    ASSERT_TRUE(p.wait_for("Executing", std::chrono::seconds(30)).has_value()) << p.err();
    pid_t child = -1;
    for (int i = 0; i < 100 && child <= 0; ++i) {
      child = child_of(p.pid());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(child, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // released, sleeping
    p.signal(SIGKILL);
    p.wait(std::chrono::seconds(10));
    bool died = false;
    for (int i = 0; i < 100 && !died; ++i) {
      died = gone(child);
      if (!died) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(died) << "the -c command " << child << " outlived leakwatch";
    if (!died) ::kill(child, SIGKILL);
  }
}

// The README's example: a -c command that exits at once shows its leaks in JSON (the
// default -o 500 used to hide every allocation of a command shorter than half a second).
TEST_F(HostileTrace, ShortCommandJsonReportKeepsItsLeaks) {
  const std::string out = temp_path("leaks.json");
  RunResult r = run_argv({leakwatch(), "memleak", "-c", fixture("ml_functions"), "--format",
                          "json", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  auto text = read_file(out);
  ASSERT_TRUE(text);
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep) << rep.error().message;
  expect_ml_functions_leaks(*rep);
  // An explicit -o still applies: nothing of this command is 100 s old.
  const std::string aged = temp_path("aged.json");
  r = run_argv({leakwatch(), "memleak", "-c", fixture("ml_functions"), "-o", "100000",
                "--format", "json", "--output", aged});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  auto aged_rep = report::read_json(read_file(aged).value_or(""));
  ASSERT_TRUE(aged_rep) << aged_rep.error().message;
  EXPECT_TRUE(aged_rep->stacks.empty()) << describe(*aged_rep);
}

// -z and -Z keep BCC's inclusive bounds: -z 999 -Z 999 keeps the 999-byte blocks.
TEST_F(HostileTrace, EqualSizeBoundsKeepThatSize) {
  auto run = memleak_command(fixture("ml_short"), {"-z", "999", "-Z", "999"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  expect_exact_leak(run.report, "leak_short", 3, 999);
}

// A leak from a plugin that was dlclose'd before the final report: the symbolizer had read
// the maps while it was loaded (the first interval report), so its frames keep their module.
TEST_F(HostileTrace, LeakInADlclosedPluginKeepsItsModule) {
  const std::string out = temp_path("dlclose.json");
  RunResult r = run_argv({leakwatch(), "memleak", "-c", fixture("ml_dlclose") + " " + fixture("libml_plugin.so") + " 3000",
                          "0.5",
                          "--format", "json", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  auto rep = report::read_json(read_file(out).value_or(""));
  ASSERT_TRUE(rep) << rep.error().message;
  expect_exact_leak(*rep, "main_leak", 3, 333);
  expect_exact_leak(*rep, "plugin_leak", 4, 555);
  auto s = stacks_in(*rep, "plugin_leak");
  ASSERT_FALSE(s.empty()) << describe(*rep);
  EXPECT_EQ(s[0]->frames[0].module, "libml_plugin.so") << describe(*rep);
}

// The same with the default 5 s interval: the plugin is unloaded before the first report,
// so only the maps read while it ran (the session compares them every second) name it.
TEST_F(HostileTrace, PluginUnloadedBeforeTheFirstReportKeepsItsName) {
  const std::string out = temp_path("dlclose-default.json");
  RunResult r = run_argv({leakwatch(), "memleak", "-c", fixture("ml_dlclose") + " " + fixture("libml_plugin.so") + " 2500",
                          "--format", "json", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << show(r);
  auto rep = report::read_json(read_file(out).value_or(""));
  ASSERT_TRUE(rep) << rep.error().message;
  expect_exact_leak(*rep, "plugin_leak", 4, 555);
  auto s = stacks_in(*rep, "plugin_leak");
  ASSERT_FALSE(s.empty()) << describe(*rep);
  EXPECT_EQ(s[0]->frames[0].module, "libml_plugin.so") << describe(*rep);
}

}  // namespace
}  // namespace leakwatch::testing
