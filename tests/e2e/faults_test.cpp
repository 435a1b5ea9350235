// Faults and load, short slices (the long versions are tests/stress): leakwatch killed
// mid-trace, repeated attach/detach, targets that fork/exec, dlopen/dlclose, exit during
// a report or get their pid reused, 16 threads freeing across threads, allocator recursion
// deeper than the kernel's nested-uretprobe limit.  RELIABILITY.md lists the figures.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"
#include "support/reliability.h"
#include "support/scenarios.h"

namespace leakwatch::testing {
namespace {
using namespace std::chrono_literals;

class Faults : public BpfTest {};

// Pairs the target did: asks a running rl_busy.
uint64_t busy_count(Proc& target) {
  target.write("count\n");
  auto line = target.wait_for("count ", 10s);
  return line ? std::stoull(line->substr(6)) : 0;
}

// Kills `lw` (already attached to rl_busy `target`) with SIGKILL and checks what is left:
// the BPF programs and links leakwatch held are gone, the target keeps running.
void expect_clean_kill(Proc& lw, Proc& target) {
  std::this_thread::sleep_for(1s);  // probes firing
  BpfHeld held = bpf_held_by(lw.pid());
  EXPECT_FALSE(held.progs.empty()) << "leakwatch held no BPF program while tracing";
  lw.signal(SIGKILL);
  int st = lw.wait(10s);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  // The kernel releases links and programs once their last descriptor closes (programs
  // after an RCU grace period): poll.
  auto any_left = [&] {
    for (uint32_t id : held.links)
      if (bpf_link_exists(id)) return true;
    for (uint32_t id : held.progs)
      if (bpf_prog_exists(id)) return true;
    return false;
  };
  EXPECT_TRUE(eventually([&] { return !any_left(); }, 10s))
      << "BPF objects of the killed leakwatch still exist";
  uint64_t a = busy_count(target);
  std::this_thread::sleep_for(300ms);
  uint64_t b = busy_count(target);
  EXPECT_GT(b, a) << "the target stopped making progress";
  target.write("quit\n");
  int tst = target.wait(10s);
  EXPECT_TRUE(WIFEXITED(tst) && WEXITSTATUS(tst) == 0) << "target status " << tst;
  record_figure("programs_held", static_cast<double>(held.progs.size()));
  record_figure("links_held", static_cast<double>(held.links.size()));
  record_figure("maps_held", static_cast<double>(held.maps.size()));
}

TEST_F(Faults, SigkillOfMemleakLeavesTargetRunningAndNothingAttached) {
  Proc target({fixture("rl_busy"), "2"});
  ASSERT_TRUE(target.wait_for("ready"));
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "60"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid")) << lw.err();
  expect_clean_kill(lw, target);
}

TEST_F(Faults, SigkillOfMemleakOnInProcessTargetLeavesItRunning) {
  // The target samples in the program (the preload library); leakwatch probes its hooks.
  // Killed, nobody reads the library's records any more: it must not block.
  const std::string lib = leakwatch().substr(0, leakwatch().rfind('/')) + "/libleakwatch-preload.so";
  Proc target({"env", "LD_PRELOAD=" + lib, "LEAKWATCH_SAMPLE_BYTES=1", fixture("rl_busy"), "2"});
  ASSERT_TRUE(target.wait_for("ready"));
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "60"});
  ASSERT_TRUE(lw.wait_for("Attaching to pid")) << lw.err();
  expect_clean_kill(lw, target);
}

TEST_F(Faults, SigkillOfGrowthLeavesTargetRunningAndNothingAttached) {
  Proc target({fixture("rl_busy"), "2"});
  ASSERT_TRUE(target.wait_for("ready"));
  Proc lw({leakwatch(), "growth", "-p", std::to_string(target.pid()), "60"});
  ASSERT_TRUE(lw.wait_for("Tracing memory growth of pid")) << lw.err();
  expect_clean_kill(lw, target);
}

TEST_F(Faults, AttachDetachCyclesGrowNothing) { memleak_attach_detach_cycles(50); }

TEST_F(Faults, AgentInvestigationCyclesGrowNothing) {
  agent_investigation_cycles(20);
}

TEST_F(Faults, TargetForkingAndExecingInALoop) { fork_exec_loop(50); }

TEST_F(Faults, TargetDlopeningAndDlclosingAnAllocatingLibrary) { dlopen_dlclose_loop(200); }

TEST_F(Faults, SixteenThreadsFreeingAcrossThreadsExact) { cross_thread_frees(16, 5000); }

// The target exits while leakwatch is producing a periodic report (2000 stacks to
// symbolize): the run ends with status 3 and a complete final report.
TEST_F(Faults, TargetExitingDuringAReport) {
  for (int delay_ms : {0, 400}) {
    SCOPED_TRACE(delay_ms);
    Proc target({fixture("rl_manystacks"), "2000", std::to_string(delay_ms)});
    ASSERT_TRUE(target.wait_for("ready"));
    const std::string out = temp_path("manystacks.json");
    Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "-T", "5000",
             "--format", "json", "--output", out, "0.3"});
    ASSERT_TRUE(lw.wait_for("Attaching")) << lw.err();
    target.write("go\n");
    ASSERT_TRUE(target.wait_for("leaked"));
    EXPECT_EQ(WEXITSTATUS(target.wait(30s)), 0);
    int st = lw.wait(60s);
    ASSERT_TRUE(WIFEXITED(st)) << lw.err();
    EXPECT_EQ(WEXITSTATUS(st), 3) << lw.err();
    auto text = read_file(out);
    ASSERT_TRUE(text) << lw.err();
    auto rep = report::read_json(*text);
    ASSERT_TRUE(rep) << rep.error().message;
    double count = 0, named = 0;
    for (const auto& s : rep->stacks) {
      count += s.count.sampled;
      if (!s.frames.empty() && s.frames[0].function.starts_with("leaf")) named += s.count.sampled;
    }
    EXPECT_EQ(count, 2000) << describe(*rep);
    EXPECT_EQ(named, 2000) << "every leak symbolized after the exit";
    record_figure("stacks_" + std::to_string(delay_ms) + "ms", static_cast<double>(rep->stacks.size()));
  }
}

// clone3 with set_tid: a child that gets exactly `pid` (root; the pid must be free).
pid_t spawn_with_pid(pid_t pid, const std::vector<std::string>& argv, int* stdin_fd) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return -1;
  clone_args args;
  std::memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  pid_t tid = pid;
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  long r = ::syscall(SYS_clone3, &args, sizeof args);
  if (r == 0) {
    ::dup2(in[0], 0);
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(127);
  }
  ::close(in[0]);
  if (r < 0) {
    ::close(in[1]);
    return -1;
  }
  *stdin_fd = in[1];
  return static_cast<pid_t>(r);
}

// The traced process exits and a new one gets its pid at once: leakwatch ends the trace
// (status 3) and counts nothing of the newcomer.
TEST_F(Faults, PidReusedByANewProcess) {
  Proc target({fixture("rl_busy"), "1"});
  ASSERT_TRUE(target.wait_for("ready"));
  const pid_t pid = target.pid();
  const std::string out = temp_path("reuse.json");
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(pid), "-o", "0", "--format", "json",
           "--output", out, "60"});
  ASSERT_TRUE(lw.wait_for("Attaching")) << lw.err();
  std::this_thread::sleep_for(500ms);
  target.write("quit\n");
  target.wait(10s);  // reaped: the pid is free
  int in = -1;
  pid_t reused = spawn_with_pid(pid, {fixture("ml_functions"), "wait"}, &in);
  if (reused < 0) GTEST_SKIP() << "cannot choose a pid here (clone3 set_tid): " << std::strerror(errno);
  ASSERT_EQ(reused, pid);
  (void)!::write(in, "go\n", 3);  // ml_functions leaks from every C allocation function
  int st = lw.wait(30s);
  ::close(in);
  int cst = 0;
  ::waitpid(reused, &cst, 0);
  ASSERT_TRUE(WIFEXITED(st)) << lw.err();
  EXPECT_EQ(WEXITSTATUS(st), 3) << lw.err();
  auto text = read_file(out);
  ASSERT_TRUE(text) << lw.err();
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep);
  for (const auto& s : rep->stacks)
    for (const auto& f : s.frames)
      EXPECT_FALSE(f.module == "ml_functions") << "the newcomer's allocation was counted\n"
                                               << describe(*rep);
}

// malloc re-entering itself 100 deep, past the kernel's 64 nested return probes per
// thread: the target survives, and the allocations after it are counted exactly.
TEST_F(Faults, AllocatorRecursionDeeperThanTheUretprobeLimit) {
  for (const char* attach : {"session", "classic"}) {
    SCOPED_TRACE(attach);
    Proc target({fixture("rl_recursive"), "20", "100"});
    ASSERT_TRUE(target.wait_for("ready"));
    const std::string out = temp_path("recursive.json");
    Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "--attach",
             attach, "--format", "json", "--output", out, "60"});
    ASSERT_TRUE(lw.wait_for("Attaching")) << lw.err();
    target.write("go\n");
    ASSERT_TRUE(target.wait_for("done", 60s)) << "target did not finish";
    lw.signal(SIGINT);
    int st = lw.wait(30s);
    ASSERT_TRUE(WIFEXITED(st)) << lw.err();
    EXPECT_EQ(WEXITSTATUS(st), 0) << lw.err();
    auto text = read_file(out);
    ASSERT_TRUE(text) << lw.err();
    auto rep = report::read_json(*text);
    ASSERT_TRUE(rep);
    expect_exact_leak(*rep, "leak_after", 10, 2222);
    double deep = 0, lost = 0;
    for (const auto& s : rep->stacks)
      if (!s.frames.empty() && s.bytes.sampled == 777 * s.count.sampled) deep += s.count.sampled;
    for (const auto& [name, n] : rep->lost) lost += static_cast<double>(n);
    // Each deep allocation is one block of 777 bytes, counted once (for the outermost
    // call), or its loss is counted.
    EXPECT_LE(std::abs(deep - 20), lost) << describe(*rep);
    target.close_stdin();
    int tst = target.wait(10s);
    EXPECT_TRUE(WIFEXITED(tst) && WEXITSTATUS(tst) == 0) << "target status " << tst;
    record_figure(std::string(attach) + "_deep_counted", deep);
    record_figure(std::string(attach) + "_lost", lost);
  }
}

}  // namespace
}  // namespace leakwatch::testing
