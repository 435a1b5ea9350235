// What the dynamic linker reads from an object besides its symbols: the dynamic section
// (DT_NEEDED, DT_RPATH/DT_RUNPATH, DT_SONAME), PT_INTERP, the GOT slots its PLT stubs jump
// through, and the system's library cache.  Used to predict, for a command that has not
// started yet, which objects it will load and in what order (that order decides which
// object's `malloc` every call binds to), and to tell where a PLT stub leads.
//
// Thread-safety: plain functions of their inputs (they read files); call from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace leakwatch::elf {

struct DynamicInfo {
  bool has_interp = false;   // PT_INTERP: started by a dynamic linker
  bool has_dynamic = false;  // PT_DYNAMIC: takes part in dynamic linking at all
  std::string interp;        // the PT_INTERP path
  std::string soname;
  std::vector<std::string> needed;   // DT_NEEDED, in order
  std::vector<std::string> rpath;    // DT_RPATH, split on ':' ($ORIGIN not expanded)
  std::vector<std::string> runpath;  // DT_RUNPATH, split on ':'
};

[[nodiscard]] Result<DynamicInfo> read_dynamic_info(const std::string& path);

// GOT slot address (st_value space) -> name of the function imported through it, from the
// JUMP_SLOT and GLOB_DAT relocations.  A PLT stub, or a -fno-plt call, does `jmp *slot`.
[[nodiscard]] Result<std::map<uint64_t, std::string>> read_got_imports(const std::string& path);

// Parses /etc/ld.so.cache ("glibc-ld.so.cache1.1" format): library name -> path, keeping
// only x86-64 libc6 entries, first entry of a name wins (the cache is sorted by priority).
std::map<std::string, std::string> parse_ld_so_cache(std::span<const uint8_t> data);

// How the dynamic linker looks a DT_NEEDED name up (ld.so(8)): DT_RPATH of the requesting
// object (when it has no DT_RUNPATH) and of the executable, LD_LIBRARY_PATH, DT_RUNPATH,
// /etc/ld.so.cache, then the default directories.
struct LibrarySearch {
  std::vector<std::string> ld_library_path;
  std::map<std::string, std::string> cache;
  std::vector<std::string> default_dirs = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                           "/lib64", "/usr/lib64", "/lib", "/usr/lib"};
  // The executable's DT_RPATH applies to every lookup (unless the requester has RUNPATH).
  std::vector<std::string> exe_rpath;
  std::string exe_dir;

  // The search as this process's environment and /etc/ld.so.cache set it up.
  static LibrarySearch FromEnvironment();
};

// The path `name` resolves to when `requester` (at `requester_path`) needs it, or nullopt.
std::optional<std::string> find_library(const std::string& name, const DynamicInfo& requester,
                                        const std::string& requester_path,
                                        const LibrarySearch& search);

// LD_PRELOAD's value split as the dynamic linker splits it (spaces and colons).
std::vector<std::string> split_preload(const std::string& value);

}  // namespace leakwatch::elf
