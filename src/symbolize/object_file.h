// Finding and opening the ELF files behind a process's mappings, and their debug files.
#pragma once

#include <cstdint>
#include <string>

#include "common/fd.h"
#include "common/result.h"
#include "common/procfs.h"

namespace leakwatch::symbolize {

struct OpenedObject {
  UniqueFd fd;
  std::string via;  // the path that was opened
};

// Opens the file a maps entry maps, trying in order
//   /proc/PID/root/<path>        (the target's mount namespace: containers)
//   /proc/PID/map_files/<range>  (the mapped inode itself, even when unlinked; needs root)
//   <path>                       (our own namespace)
// and keeps the first whose inode is the mapped one.  For a "(deleted)" path map_files
// comes first, since a file at the old path is a different (newer) one.  When no candidate
// has the mapped inode (overlayfs reports the lower inode in maps) the first one that
// opened is used, except for deleted files.
[[nodiscard]] Result<OpenedObject> open_mapped_object(int pid, const MapEntry& entry);

// The load bias of the object mapped by `entry` (runtime address = ELF vaddr + bias),
// from the PT_LOAD segment holding the mapped file offset.  0 for ET_EXEC.
[[nodiscard]] Result<uint64_t> compute_load_bias(int fd, const MapEntry& entry);

// Lowercase hex of a build id.
std::string hex_string(const unsigned char* bits, size_t len);

// Looks for a .gnu_debuglink file `debuglink` of the object at `object_path` (a path in the
// target's namespace) in the object's directory, its .debug/ subdirectory and under
// /usr/lib/debug; each first under `root_prefix` (the target's root, "" when it is ours).
// A candidate counts only if its build id equals `build_id` (hex), or, when the object has
// none, if its CRC32 equals `crc`.  Returns the open fd (or an invalid one) and its path.
UniqueFd find_debuglink_file(const std::string& object_path, const std::string& root_prefix,
                             const std::string& debuglink, uint32_t crc,
                             const std::string& build_id, std::string& found_path);

}  // namespace leakwatch::symbolize
