// The session loop (session/driver.h) with a fake session: what ends it, how often it
// collects, and that signals are read even when a report takes longer than the interval.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "session/driver.h"

namespace leakwatch::session {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class FakeSession : public TraceSession {
 public:
  Result<void> start() override {
    starts++;
    if (!start_error.empty()) return fail("{}", start_error);
    return {};
  }
  void collect() override { collects++; }
  int collect_every_ms() const override { return collect_ms; }
  void stop() override { stops++; }
  int target_pid() const override { return pid; }

  int pid = 0;
  int collect_ms = 1000;
  std::string start_error;
  int starts = 0, collects = 0, stops = 0;
};

// The stop signals, blocked in this thread before any helper thread starts (threads
// inherit the mask, so a process-directed SIGTERM waits for the signalfd).
UniqueFd stop_signals() {
  auto fd = catch_stop_signals();
  EXPECT_TRUE(fd) << fd.error().message;
  return fd ? std::move(*fd) : UniqueFd();
}

// Drops a pending SIGTERM/SIGINT a test sent, so that it cannot reach the next test.
void drain_signals(int fd) {
  signalfd_siginfo si;
  while (::read(fd, &si, sizeof si) > 0) {
  }
}

TEST(SessionDriver, ReportsSlowerThanTheIntervalStillLetSigtermStopTheLoop) {
  UniqueFd sigfd = stop_signals();
  FakeSession s;
  DriveOptions o;
  o.interval_s = 0.0001;  // shorter than one report
  o.signal_fd = sigfd.get();
  int reports = 0;
  std::thread killer([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(::getpid(), SIGTERM);
  });
  auto t0 = Clock::now();
  DriveOutcome out = drive(s, o, [&] {
    reports++;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a slow report
  });
  double took = seconds_since(t0);
  killer.join();
  EXPECT_EQ(out.cause, StopCause::kTerminated);
  EXPECT_LT(took, 5.0);         // not minutes: the signal was read between two reports
  EXPECT_GE(reports, 3);        // reports kept coming meanwhile
  EXPECT_EQ(out.reports, reports);
  EXPECT_EQ(s.starts, 1);
  EXPECT_EQ(s.stops, 1);
  EXPECT_EQ(exit_status_of(out.cause), kExitOk);
}

TEST(SessionDriver, SigintIsInterrupted) {
  UniqueFd sigfd = stop_signals();
  FakeSession s;
  DriveOptions o;
  o.signal_fd = sigfd.get();
  std::thread killer([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(::getpid(), SIGINT);
  });
  DriveOutcome out = drive(s, o, {});
  killer.join();
  EXPECT_EQ(out.cause, StopCause::kInterrupted);
  EXPECT_EQ(out.reports, 0);
}

TEST(SessionDriver, CountIncludesTheFinalReport) {
  FakeSession s;
  DriveOptions o;
  o.interval_s = 0.01;
  o.count = 3;
  int reports = 0;
  DriveOutcome out = drive(s, o, [&] { reports++; });
  EXPECT_EQ(out.cause, StopCause::kCount);
  EXPECT_EQ(reports, 2);  // the third is the caller's final report
}

TEST(SessionDriver, DurationEndsTheLoopAndCollectRunsOnItsTick) {
  FakeSession s;
  s.collect_ms = 10;
  DriveOptions o;
  o.duration_s = 0.3;
  auto t0 = Clock::now();
  DriveOutcome out = drive(s, o, {});
  double took = seconds_since(t0);
  EXPECT_EQ(out.cause, StopCause::kDuration);
  EXPECT_GE(took, 0.3);
  EXPECT_LT(took, 5.0);
  // 0.3 s at most 10 ms apart: at least ~30 collections (15 allows for a loaded machine's
  // late wakeups, which only make ticks longer).
  EXPECT_GE(s.collects, 15);
}

TEST(SessionDriver, StopFlagIsSeenWithoutWaitingForTheNextReport) {
  FakeSession s;
  std::atomic<bool> stop{false};
  DriveOptions o;
  o.interval_s = 30;
  o.duration_s = 60;
  o.stop = &stop;
  Clock::time_point set_at;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    set_at = Clock::now();
    stop = true;
  });
  DriveOutcome out = drive(s, o, {});
  double late = seconds_since(set_at);
  stopper.join();
  EXPECT_EQ(out.cause, StopCause::kStopRequested);
  EXPECT_LT(late, 1.0);  // checked every 100 ms; 1 s leaves room for a loaded machine
}

TEST(SessionDriver, TargetExitEndsTheLoopWithStatusThree) {
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::usleep(200 * 1000);
    ::_exit(0);
  }
  FakeSession s;
  s.pid = child;
  DriveOptions o;
  o.duration_s = 30;
  // The pidfd of a child becomes readable when it exits, reaped or not; reap it here so
  // that no zombie outlives the test.
  std::thread reaper([child] { ::waitpid(child, nullptr, 0); });
  auto t0 = Clock::now();
  DriveOutcome out = drive(s, o, {});
  reaper.join();
  EXPECT_EQ(out.cause, StopCause::kTargetExited);
  EXPECT_LT(seconds_since(t0), 10.0);
  EXPECT_EQ(exit_status_of(out.cause), kExitTargetGone);
}

TEST(SessionDriver, GuardReasonStopsTheLoop) {
  FakeSession s;
  s.collect_ms = 5;
  DriveOptions o;
  o.duration_s = 30;
  int asked = 0;
  o.guard = [&]() -> std::string { return ++asked >= 3 ? "over budget: 12%" : ""; };
  DriveOutcome out = drive(s, o, {});
  EXPECT_EQ(out.cause, StopCause::kGuard);
  EXPECT_EQ(out.detail, "over budget: 12%");
  EXPECT_EQ(asked, 3);
  EXPECT_EQ(s.stops, 1);
}

TEST(SessionDriver, FailedStartIsAnErrorWithoutFinalReport) {
  FakeSession s;
  s.start_error = "-c: cannot execute ./nope: no such file";
  int finished = 0;
  int status = run_command(s, {}, {}, [&]() -> Result<void> {
    finished++;
    return {};
  });
  EXPECT_EQ(status, kExitError);
  EXPECT_EQ(finished, 0);
  EXPECT_EQ(s.stops, 0);
}

TEST(SessionDriver, RunCommandWritesTheFinalReportOnceAndMapsTheStatus) {
  FakeSession s;
  DriveOptions o;
  o.duration_s = 0.05;
  int finished = 0;
  int status = run_command(s, o, {}, [&]() -> Result<void> {
    finished++;
    return {};
  });
  EXPECT_EQ(status, kExitOk);
  EXPECT_EQ(finished, 1);
  // A final report that cannot be written is an error (exit 1).
  FakeSession t;
  status = run_command(t, o, {}, []() -> Result<void> { return fail("no space left"); });
  EXPECT_EQ(status, kExitError);
}

TEST(SessionDriver, HugeDurationAndIntervalDoNotSpinOrOverflow) {
  UniqueFd sigfd = stop_signals();
  FakeSession s;
  DriveOptions o;
  o.interval_s = 1e308;
  o.duration_s = 1e308;
  o.signal_fd = sigfd.get();
  std::thread killer([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(::getpid(), SIGTERM);
  });
  int reports = 0;
  DriveOutcome out = drive(s, o, [&] { reports++; });
  killer.join();
  EXPECT_EQ(out.cause, StopCause::kTerminated);
  EXPECT_EQ(reports, 0);
  // ~300 ms on a 1 s tick: a spinning loop would have collected thousands of times.
  EXPECT_LT(s.collects, 10);
  drain_signals(sigfd.get());
}

}  // namespace
}  // namespace leakwatch::session
