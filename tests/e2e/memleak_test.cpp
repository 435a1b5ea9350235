// End-to-end: `leakwatch memleak` traces real fixture programs with real BPF.  Every
// fixture's leaks are known exactly (see the comment at the top of each fixture).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmath>
#include <regex>
#include <thread>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

class Memleak : public BpfTest {};

TEST_F(Memleak, EveryCAllocationFunctionExactly) {
  for (const char* mode : {"session", "classic"}) {
    SCOPED_TRACE(mode);
    auto run = memleak_command(fixture("ml_functions"), {"--attach", mode});
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed) << run.result.err;
    const auto& r = run.report;
    expect_ml_functions_leaks(r);
    // The balanced calls leave nothing behind.
    EXPECT_TRUE(stacks_in(r, "balanced").empty()) << describe(r);
    for (const auto& [name, value] : r.lost) EXPECT_EQ(value, 0u) << name;
    // Frames: the leaking function, then main, with file:line from DWARF.
    auto s = stacks_in(r, "leak_malloc");
    ASSERT_FALSE(s.empty());
    ASSERT_GE(s[0]->frames.size(), 2u);
    EXPECT_EQ(s[0]->frames[0].module, "ml_functions");
    EXPECT_NE(s[0]->frames[0].file.find("ml_functions.c"), std::string::npos);
    EXPECT_GT(s[0]->frames[0].line, 0);
    EXPECT_EQ(s[0]->frames[1].function, "main");
  }
}

TEST_F(Memleak, CxxOperatorNewNamesTheCaller) {
  // Attach mode probes the operators; in-process mode (the preload's wrappers) must name
  // the same callers.
  // In-process twice: exact mode (BPF's maps) and every allocation sampled through the hook
  // ring (--sample-bytes 1).
  for (const char* mode : {"attach", "in-process", "in-process ring"}) {
    SCOPED_TRACE(mode);
    const bool inprocess = std::string(mode) != "attach";
    std::vector<std::string> flags = {inprocess ? "--inprocess" : "--no-inprocess"};
    if (std::string(mode) == "in-process ring") flags.insert(flags.end(), {"--sample-bytes", "1"});
    auto run = memleak_command(fixture("ml_cxx"), flags);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed);
    const auto& r = run.report;
    EXPECT_EQ(r.lost.contains("preload_set_full"), inprocess);
    expect_exact_leak(r, "make_widget()", 7, 40);
    expect_exact_leak(r, "make_array()", 3, 100);
    expect_exact_leak(r, "make_aligned()", 2, 128);
    expect_exact_leak(r, "make_nothrow()", 2, 77);
    EXPECT_TRUE(stacks_in(r, "balanced").empty()) << describe(r);
    for (const auto& [name, value] : r.lost) EXPECT_EQ(value, 0u) << name;
    // No stack may start inside the allocator (a nested malloc counted on its own).
    for (const auto& s : r.stacks) {
      if (!s.frames.empty()) {
        EXPECT_NE(s.frames[0].function.rfind("operator new", 0), 0u) << describe(r);
      }
    }
  }
}

TEST_F(Memleak, LargeMmapBackedMallocCountedOnce) {
  auto run = memleak_command(fixture("ml_large"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  const auto& r = run.report;
  expect_exact_leak(r, "leak_large_realloc", 1, 4194304);
  auto large = stacks_in(r, "leak_large");
  double total_large = 0;
  for (const auto* s : large) total_large += s->bytes.sampled;
  EXPECT_EQ(total_large, 3 * 1048676.0 + 4194304.0) << describe(r);
  double elsewhere = 0;
  for (const auto& s : r.stacks)
    if (s.frames.empty() || s.frames[0].function.rfind("leak_large", 0) != 0) elsewhere += s.bytes.sampled;
  EXPECT_LT(elsewhere, 1048576.0) << "a nested mmap/mremap was counted\n" << describe(r);
}

TEST_F(Memleak, CrossThreadFreesMatch) {
  auto run = memleak_command(fixture("ml_threads"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  expect_exact_leak(run.report, "leak_in_thread", 5, 4321);
  EXPECT_TRUE(stacks_in(run.report, "produce").empty()) << describe(run.report);
}

// Attaching to a process that allocates and frees at full speed on 4 threads: nothing may be
// reported from it.  While the probes are attached one by one, a block recorded by a live
// malloc probe could be freed before free's probe is live (or released by a realloc not
// probed yet); release functions are attached first and blocks recorded before every probe
// was live are not reported.  A pause after each attach (fault injection) widens that window
// to ~0.3 s; the fixture stops churning once the trace runs, so that no later allocation
// at a reused address hides a block wrongly kept.
TEST_F(Memleak, AttachingToABusyProcessReportsNoFalseLeaks) {
  for (const char* mode : {"classic", "session"}) {
    SCOPED_TRACE(mode);
    Proc target({fixture("ml_churn_threads")});
    ASSERT_TRUE(target.wait_for("ready"));
    std::string out = temp_path(std::string("churn-") + mode + ".json");
    Proc lw({"env", "LEAKWATCH_TEST_ATTACH_PAUSE_US=20000", leakwatch(), "memleak", "-p",
             std::to_string(target.pid()), "--attach", mode, "--duration", "3", "--format",
             "json", "--output", out});
    ASSERT_TRUE(lw.wait_for("Attaching to pid")) << lw.err();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    target.write("stop\n");
    ASSERT_TRUE(target.wait_for("stopped"));
    int st = lw.wait();
    target.signal(SIGKILL);
    target.wait();
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << lw.err();
    auto text = read_file(out);
    ASSERT_TRUE(text) << text.error().message;
    auto rep = report::read_json(*text);
    ASSERT_TRUE(rep) << rep.error().message;
    EXPECT_TRUE(rep->stacks.empty()) << describe(*rep);
  }
}

TEST_F(Memleak, LeakInLibraryLoadedAfterAttach) {
  auto run = memleak_command(fixture("ml_dlopen"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  expect_exact_leak(run.report, "plugin_leak", 4, 555);
  auto s = stacks_in(run.report, "plugin_leak");
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s[0]->frames[0].module, "libml_plugin.so");
}

TEST_F(Memleak, ShortCommandSymbolizedAfterExit) {
  auto run = memleak_command(fixture("ml_short"));
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  expect_exact_leak(run.report, "leak_short", 3, 999);
}

TEST_F(Memleak, CallSamplingEstimateWithinTolerance) {
  // 20000 leaked blocks, 1-in-10 call sampling: the sampled count is Binomial(20000, 0.1)
  // (sd ~42, i.e. 2.1% of the mean); the estimate must be within 10% (~4.7 sd).
  auto run = memleak_command(fixture("ml_many") + " 20000 256 20000", {"-s", "10"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  EXPECT_EQ(run.report.sampling.mode, report::SamplingMode::kCalls);
  Totals t = totals_in(run.report, "leak_many");
  EXPECT_NEAR(t.est_count, 20000, 2000) << describe(run.report);
  EXPECT_NEAR(t.est_bytes, 20000 * 256.0, 20000 * 256.0 * 0.10);
  EXPECT_NEAR(t.est_bytes, t.bytes * 10, 1e-6);
  EXPECT_LT(t.count, 20000 * 0.2);  // really sampled
  EXPECT_LE(t.ci_lo, t.est_bytes);
  EXPECT_GE(t.ci_hi, t.est_bytes);
}

TEST_F(Memleak, ByteSamplingEstimateWithinTolerance) {
  // 100000 x 256 B = 25.6 MB with R = 64 KiB: p = 1 - exp(-256/65536) = 0.0039, ~390
  // samples, relative sd ~5%; the estimate must be within 20% (~4 sd).
  auto run = memleak_command(fixture("ml_many") + " 100000 256 0",
                             {"--sample-bytes", "64K", "--no-inprocess"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  EXPECT_EQ(run.report.sampling.mode, report::SamplingMode::kBytes);
  EXPECT_EQ(run.report.sampling.rate, 65536u);
  Totals t = totals_in(run.report, "leak_many");
  EXPECT_NEAR(t.est_bytes, 25.6e6, 25.6e6 * 0.20) << describe(run.report);
  EXPECT_LT(t.count, 2000);
}

TEST_F(Memleak, AttachToRunningProcessTextOutput) {
  Proc target({fixture("ml_functions"), "wait"});
  ASSERT_TRUE(target.wait_for("ready"));
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "60"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid " + std::to_string(target.pid()) + ", Ctrl+C to quit."))
      << lw.err();
  target.write("go\n");
  ASSERT_TRUE(target.wait_for("done"));
  lw.signal(SIGINT);
  int st = lw.wait();
  ASSERT_TRUE(WIFEXITED(st)) << lw.err();
  EXPECT_EQ(WEXITSTATUS(st), 0) << lw.err();
  const std::string& out = lw.out();
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\[\d\d:\d\d:\d\d\] Top 10 stacks with outstanding allocations:)")))
      << out;
  // BCC's per-stack line, then the frame lines: "\t\t0x%016x\tfunction+0xoff [module]".
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(
      "\t4444 bytes in 4 allocations from stack\n\t\t0x[0-9a-f]{16}\tleak_malloc\\+0x[0-9a-f]+ \\[ml_functions\\]\n")))
      << out;
  EXPECT_NE(out.find("\t24576 bytes in 2 allocations from stack\n\t\t0x"), std::string::npos) << out;
  target.close_stdin();
}

TEST_F(Memleak, TargetExitingMidTraceEndsWithReportAndStatus3) {
  Proc target({fixture("ml_functions"), "wait"});
  ASSERT_TRUE(target.wait_for("ready"));
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "60"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid"));
  target.write("go\n");
  ASSERT_TRUE(target.wait_for("done"));
  target.close_stdin();
  target.wait();
  int st = lw.wait(std::chrono::seconds(20));
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 3);
  EXPECT_NE(lw.err().find("exited during tracing"), std::string::npos) << lw.err();
  EXPECT_NE(lw.out().find("4444 bytes in 4 allocations from stack"), std::string::npos) << lw.out();
}

TEST_F(Memleak, IntervalAndCountAndSampledEstimateLine) {
  Proc lw({leakwatch(), "memleak", "-c", fixture("ml_functions") + " wait", "-s", "1", "1", "2"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid"));
  int st = lw.wait(std::chrono::seconds(20));
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << lw.err();
  std::string out = lw.out();
  size_t headers = 0;
  for (size_t pos = 0; (pos = out.find("stacks with outstanding allocations:", pos)) != std::string::npos; pos++)
    headers++;
  EXPECT_EQ(headers, 2u) << out;
}

TEST_F(Memleak, SampledTextShowsEstimateLine) {
  auto r = run_argv({leakwatch(), "memleak", "-c", fixture("ml_many") + " 5000 100 0", "-s", "5", "-o", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\t\d+ bytes in \d+ allocations from stack)"))) << r.out;
  EXPECT_NE(r.out.find("estimated"), std::string::npos) << r.out;
}

TEST_F(Memleak, TraceModePrintsEvents) {
  auto r = run_argv({leakwatch(), "memleak", "-t", "-c", fixture("ml_short")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("alloc exited, size = 999"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace leakwatch::testing
