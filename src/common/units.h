// Parsing of sizes and durations given on the command line ("512K", "1.5MiB", "30s").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace leakwatch {

// Bytes: a number with an optional unit K/KB/KiB, M/MB/MiB, G/GB/GiB, T (powers of 1024;
// "kB" style decimal units are taken as binary too, as most memory tools do).
[[nodiscard]] Result<uint64_t> parse_size(std::string_view text);
// Human-readable bytes: "512 B", "1.5 KiB", "3.2 MiB".
std::string format_size(double bytes);

}  // namespace leakwatch
