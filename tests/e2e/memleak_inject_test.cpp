// End-to-end: `leakwatch memleak -p PID --inject` on running programs.  The sampling library
// is loaded through ptrace into a process that runs at full speed, after which it is traced
// in-process: exact figures for what is allocated after the injection, estimates within the
// tolerances of memleak_inprocess_test.cpp, the program's own checks intact.  Then every
// refusal: one line, exit 1, the process untouched and still working.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <atomic>
#include <thread>

#include <fmt/format.h>

#include "bpf/preload_abi.h"
#include "common/atomic_file.h"
#include "common/procfs.h"
#include "report/json_writer.h"
#include "support/inject_run.h"
#include "support/memleak_run.h"
#include "cli/memleak_investigator.h"

namespace leakwatch::testing {
namespace {

class MemleakInject : public BpfTest {};

bool has_note(const report::Report& r, const std::string& text) {
  for (const auto& n : r.notes)
    if (n.find(text) != std::string::npos) return true;
  return false;
}

void expect_no_loss(const report::Report& r) {
  for (const auto& [name, value] : r.lost) EXPECT_EQ(value, 0u) << name << "\n" << describe(r);
}

// The C fixtures' leaks (inj_target.c) after an injection, exact.
void check_c_leaks(std::vector<std::string> target, std::vector<std::string> flags = {}) {
  SCOPED_TRACE(fmt::format("{}", fmt::join(target, " ")));
  Proc p(target);
  ASSERT_TRUE(p.wait_for("ready")) << p.err();
  auto run = inject_and_trace(p, flags, [&] {
    p.write("leak 7 1234\n");
    ASSERT_TRUE(p.wait_for("leaked 7"));
    p.write("calloc 3 999\n");
    ASSERT_TRUE(p.wait_for("leaked 3"));
  });
  ASSERT_TRUE(run.parsed) << run.err;
  expect_exact_leak(run.report, "inj_leak", 7, 1234);
  expect_exact_leak(run.report, "inj_leak_calloc", 3, 999);
  EXPECT_TRUE(has_note(run.report, "allocations since injection")) << describe(run.report);
  EXPECT_TRUE(has_note(run.report, "was injected into the running pid")) << describe(run.report);
  expect_no_loss(run.report);
  expect_target_intact(p);
}

TEST_F(MemleakInject, SingleAndSixteenThreadsAtFullSpeed) {
  check_c_leaks({fixture("inj_target"), "1"});
  check_c_leaks({fixture("inj_target"), "16"});
}

// The program exits during the trace: the final report, written after it is gone, keeps the
// library's figures as last read (they were once reported missing: read only at the end).
TEST_F(MemleakInject, LibraryFiguresSurviveTheProgramsExit) {
  Proc p({fixture("inj_target"), "1"});
  ASSERT_TRUE(p.wait_for("ready")) << p.err();
  const std::string out = temp_path("inject-exit.json");
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(p.pid()), "--inject", "--format", "json",
           "--output", out, "600"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid", std::chrono::seconds(90))) << lw.err();
  p.write("leak 7 1234\n");
  ASSERT_TRUE(p.wait_for("leaked 7"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  p.write("quit\n");
  p.wait();
  const int st = lw.wait(std::chrono::seconds(60));
  ASSERT_TRUE(WIFEXITED(st)) << lw.err();
  EXPECT_EQ(WEXITSTATUS(st), 3) << lw.err();  // the target exited
  auto text = read_file(out);
  ASSERT_TRUE(text);
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep) << *text;
  expect_exact_leak(*rep, "inj_leak", 7, 1234);
  EXPECT_TRUE(has_note(*rep, "sampled allocations")) << describe(*rep);
  EXPECT_FALSE(has_note(*rep, "has not reported")) << describe(*rep);
}

TEST_F(MemleakInject, FullRelroAndLazyBinding) {
  // -z now: every slot read-only after start (the library makes the page writable for the
  // write); -z lazy: calloc is not bound yet when the library arrives (its slot still leads
  // to the program's PLT).
  check_c_leaks({fixture("inj_target_fullrelro"), "4"});
  check_c_leaks({fixture("inj_target_lazy"), "4"});
}

TEST_F(MemleakInject, JemallocPreloaded) {
  check_c_leaks({"env", "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                 fixture("inj_target"), "4"});
}

TEST_F(MemleakInject, CxxOperatorNew) {
  Proc p({fixture("inj_cxx"), "4"});
  ASSERT_TRUE(p.wait_for("ready"));
  auto run = inject_and_trace(p, {}, [&] {
    p.write("leak 5 333\n");
    ASSERT_TRUE(p.wait_for("leaked 5"));
    p.write("object 9\n");
    ASSERT_TRUE(p.wait_for("objects 9"));
  });
  ASSERT_TRUE(run.parsed) << run.err;
  expect_exact_leak(run.report, "inj_cxx_leak", 5, 333);
  expect_exact_leak(run.report, "inj_cxx_objects", 9, 64);
  expect_no_loss(run.report);
  expect_target_intact(p);
}

TEST_F(MemleakInject, LibraryDlopenedAfterTheInjection) {
  Proc p({fixture("inj_target"), "4"});
  ASSERT_TRUE(p.wait_for("ready"));
  auto run = inject_and_trace(p, {}, [&] {
    p.write(fmt::format("dlopen {} 6 777\n", fixture("libinj_plugin.so")));
    ASSERT_TRUE(p.wait_for("plugin 6"));
  });
  ASSERT_TRUE(run.parsed) << run.err;
  expect_exact_leak(run.report, "inj_plugin_leak", 6, 777);
  expect_no_loss(run.report);
  expect_target_intact(p);
}

TEST_F(MemleakInject, ByteAndCallSamplingEstimates) {
  // As memleak_inprocess_test.cpp: 100000 x 256 B at R = 64 KiB, estimate within 20% and its
  // interval covering the truth; -s 100: ~1000 sampled (within 4 sd), estimate within 15%.
  for (bool bytes : {true, false}) {
    SCOPED_TRACE(bytes ? "--sample-bytes 64K" : "-s 100");
    Proc p({fixture("inj_target"), "4"});
    ASSERT_TRUE(p.wait_for("ready"));
    std::vector<std::string> flags = bytes ? std::vector<std::string>{"--sample-bytes", "64K"}
                                           : std::vector<std::string>{"-s", "100"};
    auto run = inject_and_trace(p, flags, [&] {
      p.write("leak 100000 256\n");
      ASSERT_TRUE(p.wait_for("leaked 100000"));
    });
    ASSERT_TRUE(run.parsed) << run.err;
    Totals t = totals_in(run.report, "inj_leak");
    if (bytes) {
      EXPECT_EQ(run.report.sampling.mode, report::SamplingMode::kBytes);
      EXPECT_NEAR(t.est_bytes, 25.6e6, 25.6e6 * 0.20) << describe(run.report);
      EXPECT_LT(t.count, 2000);
      EXPECT_LE(t.ci_lo, 25.6e6 * 1.05);
      EXPECT_GE(t.ci_hi, 25.6e6 * 0.95);
    } else {
      EXPECT_EQ(run.report.sampling.mode, report::SamplingMode::kCalls);
      EXPECT_NEAR(t.count, 1000, 126) << describe(run.report);
      EXPECT_NEAR(t.est_bytes, 25.6e6, 25.6e6 * 0.15) << describe(run.report);
    }
    expect_no_loss(run.report);
    expect_target_intact(p);
  }
}

TEST_F(MemleakInject, SecondInjectionReusesTheLibrary) {
  Proc p({fixture("inj_target"), "4"});
  ASSERT_TRUE(p.wait_for("ready"));
  auto first = inject_and_trace(p, {}, [&] {
    p.write("leak 2 111\n");
    ASSERT_TRUE(p.wait_for("leaked 2"));
  });
  ASSERT_TRUE(first.parsed) << first.err;
  expect_exact_leak(first.report, "inj_leak", 2, 111);
  // Asking for sampling now: the library keeps sampling every allocation, and says so.
  auto second = inject_and_trace(p, {"--sample-bytes", "64K"}, [&] {
    p.write("leak 4 222\n");
    ASSERT_TRUE(p.wait_for("leaked 4"));
  });
  ASSERT_TRUE(second.parsed) << second.err;
  EXPECT_NE(second.err.find("reusing it; the sampling asked for (R = 65536 bytes) is not applied"),
            std::string::npos)
      << second.err;
  EXPECT_EQ(second.report.sampling.mode, report::SamplingMode::kExact);
  expect_exact_leak(second.report, "inj_leak", 4, 222);
  // Blocks of the first session were allocated before this trace attached: not reported.
  EXPECT_TRUE(stacks_in(second.report, "inj_leak").size() == 1) << describe(second.report);
  EXPECT_TRUE(has_note(second.report, "injected earlier")) << describe(second.report);
  expect_target_intact(p);
}

TEST_F(MemleakInject, SeccompFilterThatAllowsTheCallsIsNoObstacle) {
  check_c_leaks({fixture("inj_target"), "2", "seccomp-allow"});
}

TEST_F(MemleakInject, LibraryCopiedIntoAnotherMountNamespace) {
  // The program runs in its own mount namespace where leakwatch's build directory is hidden
  // and /tmp is private: the library reaches it as a copy in that /tmp.
  // (under /var/tmp: the namespace gets a /tmp of its own)
  std::string dir = fmt::format("/var/tmp/leakwatch-inject-test-{}", ::getpid());
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  std::string copy = dir + "/inj_target";
  std::filesystem::copy_file(fixture("inj_target"), copy);
  std::string build = std::filesystem::path(leakwatch()).parent_path().string();
  // The build directory first: it may itself be under /tmp (a checkout in /tmp).
  Proc p({"unshare", "-m", "--propagation", "private", "sh", "-c",
          fmt::format("mount -t tmpfs none {} && mount -t tmpfs none /tmp && exec {} 2", build, copy)});
  ASSERT_TRUE(p.wait_for("ready")) << p.err();
  auto run = inject_and_trace(p, {"-v"}, [&] {
    p.write("leak 7 1234\n");
    ASSERT_TRUE(p.wait_for("leaked 7"));
  });
  ASSERT_TRUE(run.parsed) << run.err;
  expect_exact_leak(run.report, "inj_leak", 7, 1234);
  EXPECT_NE(run.err.find("copied into the process's mount namespace as /tmp/leakwatch-"),
            std::string::npos)
      << run.err;
  auto maps = read_file(fmt::format("/proc/{}/maps", p.pid()));
  ASSERT_TRUE(maps);
  EXPECT_NE(maps->find("/tmp/leakwatch-"), std::string::npos) << *maps;
  expect_target_intact(p);
}

// ---- refusals ----

struct Refusal {
  std::vector<std::string> target;
  std::string message;
  bool answers_check = true;  // the fixture understands "check"
};

void expect_refused(Proc& p, const std::string& message, bool answers_check,
                    const std::vector<std::string>& wrapper = {}) {
  auto r = run_leakwatch_inject(p.pid(), wrapper);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  expect_untouched(p, answers_check);
}

TEST_F(MemleakInject, RefusesWhatItCannotInjectSafely) {
  const Refusal cases[] = {
      {{fixture("inj_target_static"), "2"}, "statically linked", true},
      {{fixture("inj_target"), "2", "seccomp-kill"}, "its seccomp filter would kill the process", true},
      {{fixture("inj_go")}, "is a Go program", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target[0]);
    Proc p(c.target);
    ASSERT_TRUE(p.wait_for("ready")) << p.err();
    expect_refused(p, c.message, c.answers_check);
  }
  if (std::filesystem::exists(fixture("inj_target_musl"))) {
    Proc p({fixture("inj_target_musl"), "2"});
    ASSERT_TRUE(p.wait_for("ready"));
    expect_refused(p, "is a musl program", true);
  }
}

TEST_F(MemleakInject, RefusesATracedStoppedOrThreadTarget) {
  Proc p({fixture("inj_target"), "2"});
  ASSERT_TRUE(p.wait_for("ready"));
  // Traced by someone else (this test).
  ASSERT_EQ(::ptrace(PTRACE_SEIZE, p.pid(), nullptr, nullptr), 0);
  {
    auto r = run_leakwatch_inject(p.pid());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(fmt::format("is already traced by pid {}", ::getpid())), std::string::npos)
        << r.err;
  }
  ASSERT_EQ(::ptrace(PTRACE_INTERRUPT, p.pid(), nullptr, nullptr), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(p.pid(), &st, __WALL), p.pid());
  ASSERT_EQ(::ptrace(PTRACE_DETACH, p.pid(), nullptr, nullptr), 0);
  expect_untouched(p, true);
  // A thread id.
  int tid = 0;
  for (const auto& e : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", p.pid()))) {
    if (std::atoi(e.path().filename().c_str()) != p.pid()) tid = std::atoi(e.path().filename().c_str());
  }
  ASSERT_NE(tid, 0);
  {
    auto r = run_leakwatch_inject(tid);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(fmt::format("is a thread of process {}", p.pid())), std::string::npos)
        << r.err;
  }
  expect_untouched(p, true);
  // Stopped (last: SIGSTOP and SIGCONT end its idle waits with EINTR, which it counts).
  ::kill(p.pid(), SIGSTOP);
  for (int i = 0; i < 100 && process_state(p.pid()) != 'T'; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  {
    auto r = run_leakwatch_inject(p.pid());
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("is stopped"), std::string::npos) << r.err;
  }
  ::kill(p.pid(), SIGCONT);
  // (a stop signal itself ends its idle waits with EINTR: only alive is checked)
  expect_untouched(p, false);
}

TEST_F(MemleakInject, RefusesUnderPtraceScopeThree) {
  // kernel.yama.ptrace_scope cannot be set to 3 and back (3 holds until reboot), and this
  // kernel may not have Yama: leakwatch runs in a mount namespace whose /proc/sys/kernel
  // shows it as 3.
  Proc p({fixture("inj_target"), "2"});
  ASSERT_TRUE(p.wait_for("ready"));
  expect_refused(p, "kernel.yama.ptrace_scope is 3", true,
                 {"unshare", "-m", "--propagation", "private", "sh", "-c",
                  "mount -t tmpfs none /proc/sys/kernel && mkdir /proc/sys/kernel/yama && "
                  "echo 3 > /proc/sys/kernel/yama/ptrace_scope && exec \"$0\" \"$@\""});
}

}  // namespace
}  // namespace leakwatch::testing

namespace leakwatch::testing {
namespace {

// The agent's investigations: `inject: always` loads the library first; `inject:
// over_budget` starts with the uprobes and, once they cost more than the budget, injects and
// goes on in-process.  Sampling 1 call in 100: the uprobes still trap on every call (far over
// a 20% budget on this allocation loop), the library reaches BPF for 1 call in 100.
TEST_F(MemleakInject, AgentInvestigationsInject) {
  // (the investigator runs in this test binary: the library is found through the variable)
  const std::string lib =
      (std::filesystem::path(leakwatch()).parent_path() / LEAKWATCH_PRELOAD_LIBRARY).string();
  ::setenv("LEAKWATCH_PRELOAD_LIBRARY", lib.c_str(), 1);
  for (const char* policy : {"always", "over_budget"}) {
    SCOPED_TRACE(policy);
    Proc p({fixture("inj_target"), "2"});
    ASSERT_TRUE(p.wait_for("ready"));
    agent::InvestigationRequest req;
    req.pid = p.pid();
    req.target = "pid:" + std::to_string(p.pid());
    req.sampling = {report::SamplingMode::kCalls, 100};
    req.duration_s = 16;
    req.inject = policy;
    // (always: a budget the in-process trace stays under even on a loaded machine)
    req.overhead_budget_percent = std::string(policy) == "always" ? 100 : 20;
    std::atomic<bool> stop{false};
    std::thread leaker([&] {
      // Once the library is in (and the in-process trace had time to attach): the leak.
      for (int i = 0; i < 100; i++) {
        auto maps = read_file(fmt::format("/proc/{}/maps", p.pid()));
        if (maps && maps->find(LEAKWATCH_PRELOAD_LIBRARY) != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5000));
      p.write("leak 20000 256\n");
    });
    cli::MemleakInvestigator inv;
    auto r = inv.run(req, stop);
    leaker.join();
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_TRUE(p.wait_for("leaked 20000"));
    EXPECT_TRUE(has_note(r->report, "was injected into the running pid")) << describe(r->report);
    EXPECT_TRUE(has_note(r->report, "in-process: ")) << describe(r->report);
    if (std::string(policy) == "over_budget") {
      EXPECT_TRUE(has_note(r->report, "went on in-process")) << describe(r->report);
    }
    // ~200 sampled calls of 20000: the estimate within 30% (~4 sd).  (With over_budget the
    // moment the in-process trace attaches depends on when the guard trips: not asserted.)
    Totals t = totals_in(r->report, "inj_leak");
    if (std::string(policy) == "always") {
      EXPECT_NEAR(t.est_bytes, 20000 * 256.0, 20000 * 256.0 * 0.3) << describe(r->report);
    }
    expect_target_intact(p);
  }
}

}  // namespace
}  // namespace leakwatch::testing
