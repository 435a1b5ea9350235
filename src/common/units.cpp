#include "common/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>

namespace leakwatch {

std::optional<double> size_unit_bytes(std::string_view unit) {
  std::string u;
  for (char c : unit)
    if (c != ' ') u += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr std::pair<const char*, double> kUnits[] = {
      {"", 1}, {"b", 1}, {"byte", 1}, {"bytes", 1},
      {"k", 0x1p10}, {"ki", 0x1p10}, {"kib", 0x1p10}, {"kb", 1e3},
      {"m", 0x1p20}, {"mi", 0x1p20}, {"mib", 0x1p20}, {"mb", 1e6},
      {"g", 0x1p30}, {"gi", 0x1p30}, {"gib", 0x1p30}, {"gb", 1e9},
      {"t", 0x1p40}, {"ti", 0x1p40}, {"tib", 0x1p40}, {"tb", 1e12},
  };
  for (const auto& [name, bytes] : kUnits)
    if (u == name) return bytes;
  return std::nullopt;
}

Result<double> parse_bytes(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  // Digits and one dot only: from_chars would also take "nan", "inf" and exponents.
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) i++;
  double value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + i, value);
  if (i == 0 || ec != std::errc() || p != text.data() + i)
    return fail("not a size: '{}' (expected e.g. 4096, 512K, 64MiB, 100MB)", text);
  auto mult = size_unit_bytes(text.substr(i));
  if (!mult) return fail("unknown size unit in '{}' (K/KiB, M/MiB, G/GiB, T/TiB are binary; KB, MB, GB, TB decimal)", text);
  double bytes = value * *mult;
  if (!std::isfinite(bytes) || bytes >= 0x1p64) return fail("size too large: '{}'", text);
  return bytes;
}

Result<uint64_t> parse_size(std::string_view text) {
  auto bytes = parse_bytes(text);
  if (!bytes) return std::unexpected(bytes.error());
  double rounded = std::round(*bytes);
  if (rounded >= 0x1p64) return fail("size too large: '{}'", text);
  return static_cast<uint64_t>(rounded);
}

std::string format_size(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = bytes;
  while (std::fabs(v) >= 1024 && u < 4) {
    v /= 1024;
    u++;
  }
  return u == 0 ? fmt::format("{:.0f} {}", v, kUnits[u]) : fmt::format("{:.1f} {}", v, kUnits[u]);
}

}  // namespace leakwatch
