// End-to-end: `leakwatch memleak --inprocess -c`: the command runs with the preload
// library, which samples in the program and calls its hooks only for sampled blocks; BPF
// on the hooks records them.  Same fixtures, same exact figures as attach mode
// (memleak_test.cpp), and byte-sampling estimates held to attach mode's tolerance.
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <thread>

#include <fmt/format.h>

#include <filesystem>

#include "bpf/preload_abi.h"
#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

class MemleakInprocess : public BpfTest {};

std::string preload_library() {
  return (std::filesystem::path(leakwatch()).parent_path() / LEAKWATCH_PRELOAD_LIBRARY).string();
}

bool has_note(const report::Report& r, const std::string& text) {
  for (const auto& n : r.notes)
    if (n.find(text) != std::string::npos) return true;
  return false;
}

void expect_no_loss(const report::Report& r) {
  for (const auto& [name, value] : r.lost) EXPECT_EQ(value, 0u) << name << "\n" << describe(r);
}

TEST_F(MemleakInprocess, EveryCAllocationFunctionExactly) {
  // session and classic attach with the maps (exact mode); "ring": every allocation sampled
  // (--sample-bytes 1) through the hook ring and leakwatch's table.
  for (const char* mode : {"session", "classic", "ring"}) {
    SCOPED_TRACE(mode);
    std::vector<std::string> flags = {"--inprocess"};
    if (std::string(mode) == "ring") flags.insert(flags.end(), {"--sample-bytes", "1"});
    else flags.insert(flags.end(), {"--attach", mode});
    auto run = memleak_command(fixture("ml_functions"), flags);
    EXPECT_EQ(run.report.lost.contains("hook_events_lost"), std::string(mode) == "ring");
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed) << run.result.err;
    const auto& r = run.report;
    expect_ml_functions_leaks(r);
    // (leak_mmap among them: mmap is still probed where it binds)
    EXPECT_TRUE(stacks_in(r, "balanced").empty()) << describe(r);
    expect_no_loss(r);
    EXPECT_TRUE(r.lost.contains("preload_set_full")) << "the library's counters were read";
    EXPECT_TRUE(has_note(r, "in-process: ")) << describe(r);
    // The wrappers' frames are not in the stack: the leaking function, then main.
    auto s = stacks_in(r, "leak_malloc");
    ASSERT_FALSE(s.empty());
    ASSERT_GE(s[0]->frames.size(), 2u);
    EXPECT_EQ(s[0]->frames[0].module, "ml_functions");
    EXPECT_EQ(s[0]->frames[1].function, "main");
    for (const auto& st : r.stacks)
      for (const auto& f : st.frames)
        EXPECT_EQ(f.module.find("leakwatch-preload"), std::string::npos) << describe(r);
  }
}

TEST_F(MemleakInprocess, ThreadsDlopenAndShortCommands) {
  struct Case {
    const char* fixture;
    const char* function;
    double count, each;
    const char* balanced;  // a function that must hold nothing ("" for none)
  };
  for (const Case& c : {Case{"ml_threads", "leak_in_thread", 5, 4321, "produce"},
                        Case{"ml_dlopen", "plugin_leak", 4, 555, ""},
                        Case{"ml_short", "leak_short", 3, 999, ""}}) {
    // Exact mode keeps the blocks in BPF's maps; --sample-bytes 1 samples every allocation
    // too, through the hook ring and leakwatch's table (threads freeing each other's blocks
    // included).
    for (bool ring : {false, true}) {
      SCOPED_TRACE(std::string(c.fixture) + (ring ? ", hook ring" : ", maps"));
      std::vector<std::string> flags = {"--inprocess"};
      if (ring) flags.insert(flags.end(), {"--sample-bytes", "1"});
      auto run = memleak_command(fixture(c.fixture), flags);
      ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
      ASSERT_TRUE(run.parsed);
      EXPECT_EQ(run.report.lost.contains("hook_events_lost"), ring) << "not the path meant";
      expect_exact_leak(run.report, c.function, c.count, c.each);
      if (*c.balanced) {
        EXPECT_TRUE(stacks_in(run.report, c.balanced).empty()) << describe(run.report);
      }
      expect_no_loss(run.report);
    }
  }
}

TEST_F(MemleakInprocess, ForkedChildKeepsWorkingAndIsNotTheTarget) {
  // ml_fork exits 3 when its child did not finish normally.
  auto run = memleak_command(fixture("ml_fork"), {"--inprocess"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  expect_exact_leak(run.report, "leak_parent", 3, 777);
  EXPECT_TRUE(stacks_in(run.report, "leak_child").empty()) << describe(run.report);
}

TEST_F(MemleakInprocess, ByteSamplingEstimatesAsAccurateAsAttachMode) {
  // 100000 x 256 B = 25.6 MB with R = 64 KiB: ~390 samples, relative sd ~5%; each estimate
  // within 20% (~4 sd), as attach mode is held to in memleak_test.cpp, with its interval
  // covering the truth.  The churn (20000 pairs of mixed sizes) must not count.
  for (bool inprocess : {true, false}) {
    SCOPED_TRACE(inprocess ? "in-process" : "attach");
    // In-process is the default for -c with --sample-bytes.
    std::vector<std::string> args = {"--sample-bytes", "64K"};
    if (!inprocess) args.push_back("--no-inprocess");
    auto run = memleak_command(fixture("ml_many") + " 100000 256 20000", args);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed);
    EXPECT_EQ(run.report.sampling.mode, report::SamplingMode::kBytes);
    EXPECT_EQ(run.report.sampling.rate, 65536u);
    EXPECT_EQ(run.report.lost.contains("preload_set_full"), inprocess) << describe(run.report);
    Totals t = totals_in(run.report, "leak_many");
    EXPECT_NEAR(t.est_bytes, 25.6e6, 25.6e6 * 0.20) << describe(run.report);
    EXPECT_LT(t.count, 2000);  // really sampled
    EXPECT_LE(t.ci_lo, 25.6e6 * 1.05);
    EXPECT_GE(t.ci_hi, 25.6e6 * 0.95);
    EXPECT_TRUE(stacks_in(run.report, "churn").size() <= 1) << describe(run.report);
    Totals churn = totals_in(run.report, "churn");
    EXPECT_LT(churn.est_bytes, 25.6e6 * 0.02) << describe(run.report);
    expect_no_loss(run.report);
  }
}

TEST_F(MemleakInprocess, CallSamplingMatchesAttachMode) {
  // -s 100 on 100000 leaked calls: ~1000 sampled (sd 31.5), each weighted 100, so the
  // estimate's relative sd is ~3.1%.  Both modes: the sampled count within 4 sd of 1000 (the
  // library draws the same 1-in-N per call as BPF), the estimate within 15% (~5 sd).
  for (bool inprocess : {true, false}) {
    SCOPED_TRACE(inprocess ? "in-process" : "attach");
    // In-process is the default for -c with -s.
    std::vector<std::string> args = {"-s", "100"};
    if (!inprocess) args.push_back("--no-inprocess");
    auto run = memleak_command(fixture("ml_many") + " 100000 256 20000", args);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed);
    EXPECT_EQ(run.report.sampling.mode, report::SamplingMode::kCalls);
    EXPECT_EQ(run.report.sampling.rate, 100u);
    EXPECT_EQ(run.report.lost.contains("preload_set_full"), inprocess) << describe(run.report);
    Totals t = totals_in(run.report, "leak_many");
    EXPECT_NEAR(t.count, 1000, 126) << describe(run.report);
    EXPECT_NEAR(t.est_bytes, 25.6e6, 25.6e6 * 0.15) << describe(run.report);
    Totals churn = totals_in(run.report, "churn");
    EXPECT_LT(churn.est_bytes, 25.6e6 * 0.02) << describe(run.report);
    expect_no_loss(run.report);
  }
}

TEST_F(MemleakInprocess, LargeBlocksAreAlwaysSampled) {
  // ml_large's leaks are >= 1 MiB: with R = 64 KiB, p(s) = 1 - exp(-16) ~ 1, so the sampled
  // figures are the exact ones.
  auto run = memleak_command(fixture("ml_large"), {"--inprocess", "--sample-bytes", "64K"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  expect_exact_leak(run.report, "leak_large_realloc", 1, 4194304);
  double total_large = 0;
  for (const auto* s : stacks_in(run.report, "leak_large")) total_large += s->bytes.sampled;
  EXPECT_EQ(total_large, 3 * 1048676.0 + 4194304.0) << describe(run.report);
}

TEST_F(MemleakInprocess, DefaultFallsBackToAttachModeWhereThePreloadCannotWork) {
  // A static program cannot load the library: by default it is traced in attach mode, with
  // the same exact figures (its own copy of malloc is probed).
  auto run = memleak_command(fixture("ml_static"), {"--sample-bytes", "1"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed) << run.result.err;
  EXPECT_FALSE(run.report.lost.contains("preload_set_full")) << describe(run.report);
  // --sample-bytes 1: every byte is a sample point, so every allocation is recorded.
  Totals t = totals_in(run.report, "static_glibc_leak");
  EXPECT_EQ(t.count, 4) << describe(run.report);
  EXPECT_EQ(t.bytes, 4 * 1111.0) << describe(run.report);
}

TEST_F(MemleakInprocess, ProgramCarriesOnWhenLeakwatchIsKilled) {
  // A program running with the library, its hooks probed by `memleak -p`; once leakwatch is
  // gone (SIGKILL: no cleanup of its own), its probes go with its descriptors and the hooks
  // are bare NOPs again.  (A -c command dies with leakwatch: PR_SET_PDEATHSIG.)
  Proc target({"env", "LD_PRELOAD=" + preload_library(), "LEAKWATCH_SAMPLE_BYTES=1",
               fixture("ml_functions"), "wait"});
  ASSERT_TRUE(target.wait_for("ready"));
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "60"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid " + std::to_string(target.pid()))) << lw.err();
  lw.signal(SIGKILL);
  lw.wait();
  target.write("go\n");
  auto done = target.wait_for("done", std::chrono::seconds(20));
  EXPECT_TRUE(done.has_value()) << "the program stopped working with leakwatch gone";
  target.close_stdin();  // lets it exit
}

// A program started with the library (by its service manager, or `leakwatch growth -c
// --inprocess`) and traced later with -p: the library's hooks are probed, at the sampling
// the program was started with, and figures are exact as with -c.
TEST_F(MemleakInprocess, AttachesToAProgramThatRunsWithTheLibrary) {
  Proc target({"env", "LD_PRELOAD=" + preload_library(), "LEAKWATCH_SAMPLE_BYTES=1",
               fixture("ml_functions"), "wait"});
  ASSERT_TRUE(target.wait_for("ready"));
  std::string out = temp_path("attach.json");
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "-v",
           "--format", "json", "--output", out, "60"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid " + std::to_string(target.pid()))) << lw.err();
  target.write("go\n");
  ASSERT_TRUE(target.wait_for("done"));
  lw.signal(SIGINT);
  int st = lw.wait();
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << lw.err();
  EXPECT_NE(lw.err().find("probing its hooks"), std::string::npos) << lw.err();
  auto text = read_file(out);
  ASSERT_TRUE(text) << lw.err();
  auto r = report::read_json(*text);
  ASSERT_TRUE(r) << *text;
  EXPECT_EQ(r->sampling.mode, report::SamplingMode::kExact);
  EXPECT_TRUE(has_note(*r, "in-process: ")) << describe(*r);
  expect_ml_functions_leaks(*r);
  expect_no_loss(*r);
  target.close_stdin();
}

// `leakwatch growth -c --inprocess` starts the program with the library, so that the
// allocation trace that follows the growth step attaches to its hooks.
TEST_F(MemleakInprocess, GrowthStartsTheProgramReadyForAnInProcessAttach) {
  Proc growth({leakwatch(), "growth", "--inprocess", "--sample-bytes", "1", "--duration", "60",
               "-c", fixture("ml_functions") + " wait"});
  ASSERT_TRUE(growth.wait_for("ready")) << growth.err();
  std::string children;
  for (int i = 0; i < 50 && children.empty(); i++) {
    auto text = read_file(fmt::format("/proc/{}/task/{}/children", growth.pid(), growth.pid()));
    if (text) children = *text;
    if (children.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(children.empty()) << "growth started no command";
  int pid = std::stoi(children);
  std::string out = temp_path("after_growth.json");
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(pid), "-o", "0", "--format", "json",
           "--output", out, "60"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid")) << lw.err();
  growth.write("go\n");
  ASSERT_TRUE(growth.wait_for("done"));
  lw.signal(SIGINT);
  int st = lw.wait();
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << lw.err();
  auto text = read_file(out);
  ASSERT_TRUE(text) << lw.err();
  auto r = report::read_json(*text);
  ASSERT_TRUE(r) << *text;
  EXPECT_TRUE(has_note(*r, "in-process: ")) << describe(*r);
  expect_ml_functions_leaks(*r);
  growth.close_stdin();
  st = growth.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << growth.err();
}

// The library decides what is sampled: other -s/--sample-bytes probe the allocator
// instead, and with --inprocess they are an error.
TEST_F(MemleakInprocess, OtherSamplingThanTheProgramsProbesTheAllocator) {
  Proc target({"env", "LD_PRELOAD=" + preload_library(), "LEAKWATCH_SAMPLE_BYTES=64K",
               fixture("ml_functions"), "wait"});
  ASSERT_TRUE(target.wait_for("ready"));
  const std::string pid = std::to_string(target.pid());
  auto asked = run_argv({leakwatch(), "memleak", "-p", pid, "-s", "10", "--inprocess",
                         "--duration", "1"},
                        std::chrono::seconds(30));
  EXPECT_EQ(asked.exit_code, 1);
  EXPECT_NE(asked.err.find("samples in-process (R = 65536 bytes"), std::string::npos) << asked.err;
  auto fallback = run_argv({leakwatch(), "memleak", "-p", pid, "-s", "10", "-v", "--duration",
                            "1"},
                           std::chrono::seconds(30));
  EXPECT_EQ(fallback.exit_code, 0) << fallback.err;
  EXPECT_NE(fallback.err.find("in-process sampling not used"), std::string::npos) << fallback.err;
  EXPECT_EQ(fallback.out.find("in-process:"), std::string::npos) << fallback.out;
  target.close_stdin();
}

TEST_F(MemleakInprocess, BadCombinationsAreRefused) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  Proc plain({fixture("ml_functions"), "wait"});  // runs without the library
  ASSERT_TRUE(plain.wait_for("ready"));
  const Case cases[] = {
      {{"memleak", "--inprocess", "-p", std::to_string(plain.pid())},
       "has not loaded " LEAKWATCH_PRELOAD_LIBRARY},
      {{"memleak", "--inprocess", "-c", fixture("ml_short"), "-O", "/lib/x86_64-linux-gnu/libc.so.6"},
       "attach mode only"},
      {{"memleak", "--inprocess", "-c", fixture("ml_static")}, "statically linked"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {leakwatch()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run_argv(argv, std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 1) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  plain.close_stdin();
}

}  // namespace
}  // namespace leakwatch::testing
