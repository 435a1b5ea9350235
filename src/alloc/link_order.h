// The order in which the dynamic linker searches a process's objects for a symbol.
//
// Every call to `malloc` binds to the first object in this order that exports `malloc`:
//
//   executable -> LD_PRELOAD objects -> /etc/ld.so.preload -> DT_NEEDED, breadth first
//
// That is the order of the link map (r_debug.r_map), which /proc/PID/maps does not show
// (maps are in address order).  For a running process the link map is read from its memory
// (auxv AT_PHDR -> PT_DYNAMIC -> DT_DEBUG -> r_debug -> link_map list); if that fails the
// order is approximated from /proc/PID/environ's LD_PRELOAD and the DT_NEEDED entries of
// the mapped objects.  For a command that has not started, the order is predicted from the
// executable's DT_NEEDED entries and this process's environment (which the command
// inherits), with the library search of ld.so(8).
//
// Paths are as the target sees them; `open_path` reaches the same file from leakwatch's
// mount namespace (through /proc/PID/root when the target lives in another one).
//
// Thread-safety: plain functions; call from any thread.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "elf/elf_dynamic.h"

namespace leakwatch::alloc {

struct LinkedObject {
  std::string path;       // as the target sees it
  std::string open_path;  // where leakwatch opens it
  std::string why;        // "executable", "LD_PRELOAD", "DT_NEEDED of libfoo.so", ...
};

struct LinkOrder {
  std::vector<LinkedObject> objects;  // symbol search order; objects[0] is the executable
  bool static_executable = false;     // no dynamic linker: only objects[0] takes part
  std::string method;                 // how the order was obtained (for -v)
};

// A running process.  Fails only when the process or its executable cannot be read.
[[nodiscard]] Result<LinkOrder> process_link_order(int pid);

// A command not started yet: `exe` is its resolved path, `ld_preload` the LD_PRELOAD it
// will inherit.  /etc/ld.so.preload is read as well.
[[nodiscard]] Result<LinkOrder> command_link_order(const std::string& exe,
                                                   const std::string& ld_preload,
                                                   const elf::LibrarySearch& search);

// The link map of a running process, read from its memory: the objects' names in load
// order (the executable first, as ""), vdso and other pseudo entries included.
[[nodiscard]] Result<std::vector<std::string>> read_link_map(int pid);

}  // namespace leakwatch::alloc
