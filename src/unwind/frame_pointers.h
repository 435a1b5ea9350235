// Whether an object's code keeps frame pointers, judged from its functions' call frame
// information (.eh_frame), or from their prologues where an object has none.
#pragma once

#include <string>

#include "common/result.h"

namespace leakwatch::unwind {

struct FramePointerCheck {
  size_t functions = 0;        // functions examined
  size_t with_frame = 0;       // ... that make rbp their frame pointer somewhere in their body
  size_t judged_by_cfi = 0;    // ... of the examined functions, judged from their CFI rows
  bool keeps_frame_pointers() const { return functions > 0 && with_frame * 2 >= functions; }
};

// Examines up to `max_functions` sizeable functions of the object.  A function keeps a
// frame pointer when one of its CFI rows computes the CFA from rbp: that holds however the
// compiler scheduled or shrink-wrapped the prologue (a `push %rbp` after an early-exit test,
// `mov %rsp,%rbp` a few instructions later) and for the .cold parts that run in their
// parent's frame, where a look at the first bytes sees no prologue at all.  Code built
// without frame pointers computes the CFA from rsp everywhere but in the rare function that
// realigns its stack or calls alloca.  Without CFI for a function, its first bytes are
// checked for `push %rbp; mov %rsp,%rbp`.
[[nodiscard]] Result<FramePointerCheck> check_frame_pointers(const std::string& path,
                                                            size_t max_functions = 200);

}  // namespace leakwatch::unwind
