// Parsing of /proc/PID/maps and the few /proc/PID/stat fields the symbolizer needs.
// Pure functions over text, so they are tested on fixed strings without a live process.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace leakwatch::symbolize {

// One line of /proc/PID/maps.
struct MapsEntry {
  uint64_t start = 0, end = 0, offset = 0;
  bool readable = false, writable = false, executable = false, shared = false;
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;  // verbatim, may be "", "[vdso]", "/x (deleted)", contain spaces

  // The path without the kernel's " (deleted)" suffix.
  std::string file_path() const;
  bool deleted() const;
  // A regular file mapping ("/..."), as opposed to anonymous memory or "[vdso]" & co.
  bool file_backed() const { return inode != 0 && !path.empty() && path.front() == '/'; }
};

// Parses the whole text of a maps file.  A malformed line fails the parse: the kernel's
// format is fixed, so a bad line means the input is not a maps file.
[[nodiscard]] Result<std::vector<MapsEntry>> parse_proc_maps(std::string_view text);

// The fields of /proc/PID/stat that identify a process instance.
struct ProcStat {
  char state = '?';         // R, S, D, Z, X, ...
  uint64_t start_time = 0;  // field 22, clock ticks after boot: tells a reused pid apart
};
[[nodiscard]] Result<ProcStat> parse_proc_stat(std::string_view text);

// Reads a procfs file completely (their st_size is 0, so read until EOF).  The error keeps
// errno, so callers can tell "process gone" (ENOENT, ESRCH) from "not permitted".
[[nodiscard]] Result<std::string> read_proc_file(const std::string& path);

}  // namespace leakwatch::symbolize
