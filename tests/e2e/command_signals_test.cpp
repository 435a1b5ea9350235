// The tracing commands stop on SIGTERM and SIGINT with their final report even when their
// interval is shorter than the time one report takes (they all run the one session loop of
// session/driver.h): a report never keeps the loop from reading signals or the -c
// command's stops.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "support/process.h"

namespace leakwatch::testing {
namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  std::vector<std::string> args;
  std::string started;      // a line printed once tracing runs
  std::string final_line;   // a line of the final report
};

void expect_prompt_stop(const Case& c, int sig) {
  std::vector<std::string> argv{leakwatch()};
  argv.insert(argv.end(), c.args.begin(), c.args.end());
  Proc p(argv);
  ASSERT_TRUE(p.wait_for(c.started)) << p.out();
  std::this_thread::sleep_for(std::chrono::seconds(1));  // reports back to back meanwhile
  auto t0 = Clock::now();
  p.signal(sig);
  int st = p.wait(std::chrono::seconds(30));
  double took = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_TRUE(WIFEXITED(st)) << "killed: the signal was ignored; " << p.err();
  EXPECT_EQ(WEXITSTATUS(st), 0) << p.err();
  EXPECT_LT(took, 10.0);
  EXPECT_NE(p.out().find(c.final_line), std::string::npos) << p.out().substr(0, 2000);
}

class CommandSignals : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  }
};

TEST_F(CommandSignals, MemleakCommandWithTinyIntervalStopsOnSigterm) {
  expect_prompt_stop({{"memleak", "-c", "sleep 60", "0.0001"}, "Attaching to pid",
                      "Top 10 stacks with outstanding allocations"},
                     SIGTERM);
}

TEST_F(CommandSignals, MemleakPidWithTinyIntervalStopsOnSigint) {
  Proc target({"sleep", "60"});
  expect_prompt_stop({{"memleak", "-p", std::to_string(target.pid()), "0.0001"},
                      "Attaching to pid", "Top 10 stacks with outstanding allocations"},
                     SIGINT);
  target.signal(SIGKILL);
  target.wait();
}

TEST_F(CommandSignals, GrowthCommandWithTinyIntervalStopsOnSigterm) {
  expect_prompt_stop({{"growth", "-c", "sleep 60", "0.0001"}, "Tracing memory growth of pid",
                      "stacks"},
                     SIGTERM);
}

TEST_F(CommandSignals, KernelMemleakWithTinyIntervalStopsOnSigterm) {
  expect_prompt_stop({{"memleak", "0.0001", "-o", "0"}, "Attaching to kernel allocators",
                      "Top 10 stacks with outstanding allocations"},
                     SIGTERM);
}

}  // namespace
}  // namespace leakwatch::testing
