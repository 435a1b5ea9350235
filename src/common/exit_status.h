// Exit statuses of leakwatch's commands (documented in each command's --help).
#pragma once

namespace leakwatch {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;           // bad input, or the trace could not run
inline constexpr int kExitUsage = 2;           // report: bad command line
inline constexpr int kExitTargetGone = 3;      // the -p process exited, the -c command was killed
inline constexpr int kExitAlertMedium = 4;     // report --alert: a medium alert
inline constexpr int kExitAlertHigh = 5;       // report --alert: a high alert

}  // namespace leakwatch
