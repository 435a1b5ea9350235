// The agent loop's signal wait: a deadline in the past, infinite or NaN must neither skip
// pending signals nor spin (`detection.interval: 1ms` made rounds overrun their deadline,
// and the wait then returned without ever reading SIGTERM).
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "cli/signal_wait.h"
#include "metrics/process_collector.h"

namespace leakwatch::cli {
namespace {

class SignalWait : public ::testing::Test {
 protected:
  void SetUp() override {
    sigemptyset(&set_);
    sigaddset(&set_, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  void TearDown() override {
    timespec zero{0, 0};
    while (::sigtimedwait(&set_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigset_t set_, old_;
};

TEST_F(SignalWait, PendingSignalIsTakenWhenTheDeadlineHasPassed) {
  ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);  // pending: blocked in this thread
  EXPECT_EQ(wait_signal(set_, metrics::monotonic_seconds() - 5), SIGUSR2);
  EXPECT_EQ(wait_signal(set_, metrics::monotonic_seconds() - 5), 0);  // nothing pending
}

TEST_F(SignalWait, InfiniteDeadlineWaitsForTheSignal) {
  std::thread sender([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    ::kill(::getpid(), SIGUSR2);
  });
  auto start = std::chrono::steady_clock::now();
  int sig = wait_signal(set_, std::numeric_limits<double>::infinity());
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  sender.join();
  EXPECT_EQ(sig, SIGUSR2);
  EXPECT_GE(waited, 1.0);  // it waited (through at least one 1 s slice), not spun out
}

TEST_F(SignalWait, NanDeadlineReturnsAndStillTakesSignals) {
  EXPECT_EQ(wait_signal(set_, std::nan("")), 0);
  ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
  EXPECT_EQ(wait_signal(set_, std::nan("")), SIGUSR2);
}

}  // namespace
}  // namespace leakwatch::cli
