#include "common/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace leakwatch {

Result<uint64_t> parse_size(std::string_view text) {
  std::string s(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) i++;
  if (i == 0) return fail("not a size: '{}' (expected e.g. 4096, 512K, 16M)", text);
  double value = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + i, value);
  if (ec != std::errc() || p != s.data() + i) return fail("not a size: '{}'", text);
  std::string unit;
  for (char c : s.substr(i))
    if (c != ' ') unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mult = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TIB") mult = 1024.0 * 1024 * 1024 * 1024;
  else return fail("unknown size unit in '{}' (use K, M, G or T)", text);
  double bytes = value * mult;
  // 2^64 itself does not fit; llround would overflow above 2^63.
  if (!std::isfinite(bytes) || bytes >= 18446744073709551616.0)
    return fail("size too large: '{}'", text);
  return static_cast<uint64_t>(std::round(bytes));
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
