// /proc/PID/maps parsing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace leakwatch {

struct MapEntry {
  uint64_t start = 0, end = 0, offset = 0, inode = 0;
  std::string perms;  // "r-xp"
  std::string path;   // "" for anonymous, "[heap]" etc. for special mappings
  bool executable() const { return perms.size() > 2 && perms[2] == 'x'; }
  bool file_backed() const { return inode != 0 && !path.empty() && path[0] == '/'; }
};

std::vector<MapEntry> parse_proc_maps(std::string_view text);
[[nodiscard]] Result<std::vector<MapEntry>> read_proc_maps(int pid);

// Path under which leakwatch can open a file the target sees at `path`: through
// /proc/PID/root when that exists (another mount namespace), else `path` itself.
std::string target_path(int pid, const std::string& path);

// Whether the process exists (and is not a zombie we already reaped).
bool process_exists(int pid);
// The process's command name (/proc/PID/comm), "" when unknown.
std::string process_comm(int pid);
// The process's resident memory (/proc/PID/statm), nullopt when it cannot be read.
std::optional<uint64_t> process_rss_bytes(int pid);

}  // namespace leakwatch
