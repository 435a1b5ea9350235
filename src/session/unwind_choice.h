// How a trace walks user stacks (--unwind auto|fp|dwarf), shared by the allocation trace
// and the growth trace.
//
//   fp     frame pointers, walked in BPF: cheap, but a stack stops at the first function
//          compiled without them (Debian's glibc and libstdc++ are);
//   dwarf  a bounded copy of the top of the user stack, unwound in user space with the
//          objects' CFI (unwind/unwinder.h): whole stacks through frameless code;
//   auto   dwarf when one of the objects that matter (the program, and for growth the
//          allocator libraries whose code makes the faults and brk calls) does not keep
//          frame pointers, judged from its CFI (unwind/frame_pointers.h).
//
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace leakwatch::session {

enum class Unwind { kAuto, kFramePointers, kDwarf };

// "auto", "fp", "dwarf" -> Unwind; a one-line error naming the flag otherwise.
[[nodiscard]] Result<Unwind> parse_unwind(const std::string& text);
// --snapshot-size: bytes of user stack per snapshot, 512 .. LW_SNAPSHOT_MAX.
[[nodiscard]] Result<uint32_t> parse_snapshot_size(const std::string& text);

struct UnwindChoice {
  bool dwarf = false;
  std::string why;  // for the log and the report ("frame pointers: asked", ...)
};

// `objects`: paths leakwatch can open, the program first.  Objects that cannot be examined
// are left out of an auto decision; with none examined, frame pointers.
UnwindChoice choose_unwind(Unwind mode, const std::vector<std::string>& objects);

}  // namespace leakwatch::session
