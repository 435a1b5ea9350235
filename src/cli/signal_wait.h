// Waiting for control signals (blocked in every thread, taken with sigtimedwait) until a
// deadline, as the agent's loop does between rounds.
#pragma once

#include <signal.h>

namespace leakwatch::cli {

// Waits for one of `set` until `deadline` (CLOCK_MONOTONIC seconds, metrics::
// monotonic_seconds()): returns the signal, or 0 at the deadline.  Pending signals are
// always taken, even when the deadline has already passed (a round that took longer than
// the interval must not starve SIGTERM); each wait lasts at most a second, so an infinite
// deadline waits for a signal without a timeout overflow and a NaN one returns promptly.
int wait_signal(const sigset_t& set, double deadline);

}  // namespace leakwatch::cli
