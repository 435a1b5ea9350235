// Parsing of sizes and durations given on the command line ("512K", "1.5MiB", "30s").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace leakwatch {

// Sizes, one meaning for the command line and the agent's configuration (case-insensitive,
// a space allowed between number and unit):
//   KiB MiB GiB TiB, Ki Mi Gi Ti, and K M G T alone: binary (1024^n), as memory tools and
//                                                     sampling rates ("512K") use them
//   KB MB GB TB:                                      decimal (1000^n), as SI and Kubernetes
//   B, bytes, or no unit:                             bytes
// The unit of a size (lower case, no spaces), as a number of bytes; nullopt if unknown.
std::optional<double> size_unit_bytes(std::string_view unit);
// A size in bytes (fractions allowed: "1.5GB"); not negative, finite.
[[nodiscard]] Result<double> parse_bytes(std::string_view text);
// The same, rounded to whole bytes (below 2^64).
[[nodiscard]] Result<uint64_t> parse_size(std::string_view text);
// Human-readable bytes: "512 B", "1.5 KiB", "3.2 MiB".
std::string format_size(double bytes);

}  // namespace leakwatch
