// Where a command's final output goes: --output FILE (written atomically) or stdout.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace leakwatch::cli {

// Writes `data` to `path` through a temporary file and a rename, or to stdout when `path`
// is empty; a failed write or flush of stdout is an error too (nothing is lost silently).
[[nodiscard]] Result<void> write_output(const std::string& path, std::string_view data);
// The same for a rendered report: a rendering error is returned as it is.
[[nodiscard]] Result<void> write_rendered(const std::string& path, const Result<std::string>& rendered);

}  // namespace leakwatch::cli
