// Reading procfs: /proc/PID/maps and /proc/PID/stat parsed (pure functions over text,
// tested on fixed strings), whole-file reads, and small process queries.  One parser of
// each file for every layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace leakwatch {

// One line of /proc/PID/maps.
struct MapEntry {
  uint64_t start = 0, end = 0, offset = 0;
  bool readable = false, writable = false, executable = false, shared = false;
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;  // verbatim, may be "", "[heap]", "/x (deleted)", contain spaces

  // The path without the kernel's " (deleted)" suffix.
  std::string file_path() const;
  bool deleted() const;
  // A regular file mapping ("/..."), as opposed to anonymous memory or "[vdso]" & co.
  bool file_backed() const { return inode != 0 && !path.empty() && path.front() == '/'; }
};

// Parses the whole text of a maps file.  A malformed line fails the parse: the kernel's
// format is fixed, so a bad line means the input is not a maps file.
[[nodiscard]] Result<std::vector<MapEntry>> parse_proc_maps(std::string_view text);
[[nodiscard]] Result<std::vector<MapEntry>> read_proc_maps(int pid);
// The maps of one process instance (pid and start time, ProcStat::start_time_ticks):
// nullopt when it has exited (or is a zombie) or the pid now names another process.
// The stat file is read after the maps, so matching start times mean the maps were its.
[[nodiscard]] Result<std::optional<std::vector<MapEntry>>> read_instance_maps(
    int pid, uint64_t start_time_ticks);

// /proc/PID/stat: the fields leakwatch uses (numbering as in proc(5)).
struct ProcStat {
  int pid = 0;
  std::string comm;              // (2) may contain spaces and parentheses
  char state = '?';              // (3) R, S, D, Z, X, ...
  int ppid = 0;                  // (4)
  uint64_t minflt = 0;           // (10)
  uint64_t majflt = 0;           // (12)
  uint64_t utime_ticks = 0;      // (14)
  uint64_t stime_ticks = 0;      // (15)
  int num_threads = 0;           // (20)
  uint64_t start_time_ticks = 0; // (22) since boot: with pid, identifies a process instance
  uint64_t vsize = 0;            // (23) bytes
  uint64_t rss_pages = 0;        // (24)
};
[[nodiscard]] Result<ProcStat> parse_proc_stat(std::string_view text);

// Reads a procfs file completely (their st_size is 0, so read until EOF).  The error keeps
// errno, so callers can tell "process gone" (ENOENT, ESRCH) from "not permitted".
[[nodiscard]] Result<std::string> read_proc_file(const std::string& path);
// The same into a caller-owned buffer reused between reads (no allocation once it has
// grown); the view is valid until the next read into `buf`.
[[nodiscard]] Result<std::string_view> read_proc_file(const std::string& path, std::string& buf);

// Path under which leakwatch can open a file the target sees at `path`: through
// /proc/PID/root when that exists (another mount namespace), else `path` itself.
std::string target_path(int pid, const std::string& path);

// Whether the process exists (and is not a zombie we already reaped).
bool process_exists(int pid);
// The process's command name (/proc/PID/comm), "" when unknown.
std::string process_comm(int pid);
// The value of a "Key:\tvalue" line of /proc/PID/status text ("" when absent), and the same
// read from the process's file now.
std::string status_field(std::string_view status_text, std::string_view key);
std::string process_status_field(int pid, std::string_view key);
// The process's resident memory (/proc/PID/statm), nullopt when it cannot be read.
std::optional<uint64_t> process_rss_bytes(int pid);

}  // namespace leakwatch
