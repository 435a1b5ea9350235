// Quantities with units as written in the agent's YAML configuration, and their display.
//   sizes:      "100MB", "64 KiB", "1.5GB", "4096" (bytes), with the units of
//               common/units.h: KB/MB/GB/TB decimal (1000^n), KiB/MiB/GiB/TiB, Ki..Ti and
//               K/M/G/T alone binary (1024^n).  Case-insensitive.
//   rates:      SIZE "/" TIME-UNIT: "5MB/min", "1MiB/s", "2GB/hour", "100KB/sec"
//   durations:  "300" (seconds), "500ms", "30s", "5min", "5m", "2h", "1d"
//   thresholds: an optional ">" or ">=" before a quantity: ">5MB/min", ">=0.7"; a bare
//               quantity means ">=".
// All functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace leakwatch::agent {

enum class Comparison { kGreater, kGreaterEqual };

struct Threshold {
  Comparison op = Comparison::kGreater;
  double value = 0;  // in base units: bytes, bytes per second, seconds, or a plain number

  bool holds(double x) const { return op == Comparison::kGreater ? x > value : x >= value; }
};

[[nodiscard]] Result<double> parse_size(std::string_view text);      // bytes
[[nodiscard]] Result<double> parse_rate(std::string_view text);      // bytes per second
[[nodiscard]] Result<double> parse_duration(std::string_view text);  // seconds
[[nodiscard]] Result<double> parse_number(std::string_view text);    // unitless, e.g. 0.7

using QuantityParser = Result<double> (*)(std::string_view);
[[nodiscard]] Result<Threshold> parse_threshold(std::string_view text, QuantityParser parse);

// Display: "1.5 MiB", "512 B"; "+5.0 MiB/min" (the unit chosen to keep 1..999); "4m05s".
std::string format_bytes(double bytes);
std::string format_rate(double bytes_per_s);
std::string format_duration(double seconds);

}  // namespace leakwatch::agent
