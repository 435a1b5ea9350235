#include "cli/signal_wait.h"

#include <time.h>

#include <cerrno>
#include <algorithm>
#include <cmath>

#include "metrics/process_collector.h"

namespace leakwatch::cli {

int wait_signal(const sigset_t& set, double deadline) {
  for (;;) {
    double left = deadline - metrics::monotonic_seconds();
    // !(left > 0) also catches NaN; the clamp keeps the timespec finite and the loop
    // responsive whatever the deadline.
    if (!(left > 0)) left = 0;
    left = std::min(left, 1.0);
    timespec ts{static_cast<time_t>(left), static_cast<long>((left - std::floor(left)) * 1e9)};
    int sig = ::sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return 0;
    if (!(metrics::monotonic_seconds() < deadline)) return 0;
  }
}

}  // namespace leakwatch::cli
