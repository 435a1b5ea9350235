// What the tracing commands (memleak, growth, kernel memleak) do around their session once
// it is created: BCC-style interval reports on stdout (text format, no --output), the final
// report rendered and written to --output or stdout, the exit status of session/driver.h.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "cli/output.h"
#include "session/driver.h"

namespace leakwatch::cli {

struct CommandRun {
  double interval_s = 5;
  int64_t count = -1;
  double duration_s = 0;
  std::string output;        // --output ("" = stdout)
  bool interval_text = false; // print each interval report as text
  int signal_fd = -1;        // session::catch_stop_signals()
};

// `build(final)` snapshots a report; `text` renders an interval report; `render` the final.
template <typename Report>
int run_with_reports(session::TraceSession& s, const CommandRun& c,
                     const std::function<Report(bool final_report)>& build,
                     const std::function<std::string(const Report&)>& text,
                     const std::function<Result<std::string>(const Report&)>& render) {
  session::DriveOptions d;
  d.interval_s = c.interval_s;
  d.count = c.count;
  d.duration_s = c.duration_s;
  d.signal_fd = c.signal_fd;
  auto interval = [&] {
    Report rep = build(false);
    if (!c.interval_text) return;
    std::string t = text(rep);
    std::fwrite(t.data(), 1, t.size(), stdout);
    std::fflush(stdout);
  };
  auto finish = [&]() -> Result<void> { return write_rendered(c.output, render(build(true))); };
  return session::run_command(s, d, interval, finish);
}

}  // namespace leakwatch::cli
