// Writes a file completely or not at all: data goes to "PATH.tmp.PID", is fsync'ed, then
// renamed over PATH.  Readers never see a half-written report.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace leakwatch {

[[nodiscard]] Result<void> write_file_atomic(const std::string& path, std::string_view data);
[[nodiscard]] Result<std::string> read_file(const std::string& path);

}  // namespace leakwatch
