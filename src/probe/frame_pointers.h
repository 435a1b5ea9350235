// Whether an object's code keeps frame pointers, judged from its functions' prologues.
#pragma once

#include <string>

#include "common/result.h"

namespace leakwatch::probe {

struct FramePointerCheck {
  size_t functions = 0;        // functions examined
  size_t with_prologue = 0;    // ... starting with push %rbp; mov %rsp,%rbp
  bool keeps_frame_pointers() const { return functions > 0 && with_prologue * 2 >= functions; }
};

// Examines up to `max_functions` sizeable functions of the object.
[[nodiscard]] Result<FramePointerCheck> check_frame_pointers(const std::string& path,
                                                            size_t max_functions = 200);

}  // namespace leakwatch::probe
