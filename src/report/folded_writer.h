// Folded stacks ("outermost;...;innermost bytes"), the input of flamegraph.pl, speedscope,
// inferno and most flame-graph tools.  One line per distinct call path, weighted by the
// estimated outstanding bytes (rounded); lines with identical paths are merged.
//
// Frame names come from frame_label(): the function, "[module]" when only the module is
// known, or "0xADDR".  ';' (the separator) in a name is replaced by ':' and line breaks by
// spaces; spaces are kept (the tools split the count off at the last space).  A truncated
// stack gets a "[truncated]" root so its partial paths are not mistaken for complete ones.
// Stacks with no positive byte estimate are left out (the tools reject negative counts).
#pragma once

#include <string>

#include "report/model.h"

namespace leakwatch::report {

// Pure function; thread-safe.
std::string write_folded(const Report& report);

}  // namespace leakwatch::report
