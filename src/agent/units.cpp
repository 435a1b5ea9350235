#include "agent/units.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "common/text.h"
#include "common/units.h"

namespace leakwatch::agent {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits "12.5 MiB" into 12.5 and "mib" (lower case, spaces removed).
struct NumberAndUnit {
  double number = 0;
  std::string unit;
};

Result<NumberAndUnit> split_number(std::string_view text) {
  text = trim(text);
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p == text.data()) return fail("no number");
  if (!std::isfinite(v) || v < 0) return fail("negative or not finite");
  return NumberAndUnit{v, lower(trim(std::string_view(p, text.data() + text.size() - p)))};
}

std::optional<double> time_unit_seconds(const std::string& u, bool allow_empty) {
  if (u.empty()) return allow_empty ? std::optional<double>(1.0) : std::nullopt;
  static const std::array<std::pair<const char*, double>, 17> kUnits{{
      {"ms", 1e-3}, {"s", 1}, {"sec", 1}, {"secs", 1}, {"second", 1}, {"seconds", 1},
      {"m", 60}, {"min", 60}, {"mins", 60}, {"minute", 60}, {"minutes", 60},
      {"h", 3600}, {"hr", 3600}, {"hour", 3600}, {"hours", 3600},
      {"d", 86400}, {"day", 86400},
  }};
  for (auto& [name, secs] : kUnits)
    if (u == name) return secs;
  if (u == "days") return 86400.0;
  return std::nullopt;
}

}  // namespace

Result<double> parse_size(std::string_view text) {
  if (auto bytes = parse_bytes(text)) return *bytes;
  return fail("expected a size such as 100MB, 64KiB or 1.5GB, got \"{}\"", trim(text));
}

Result<double> parse_rate(std::string_view text) {
  size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    auto size = parse_size(text.substr(0, slash));
    auto per = time_unit_seconds(lower(trim(text.substr(slash + 1))), false);
    if (size && per) return *size / *per;
  }
  return fail("expected a rate such as 5MB/min, 1MiB/s or 2GB/hour, got \"{}\"", trim(text));
}

Result<double> parse_duration(std::string_view text) {
  auto nu = split_number(text);
  if (nu) {
    if (auto s = time_unit_seconds(nu->unit, true)) return nu->number * *s;
  }
  return fail("expected a duration such as 300 (seconds), 30s, 5min or 2h, got \"{}\"",
              trim(text));
}

Result<double> parse_number(std::string_view text) {
  auto nu = split_number(text);
  if (nu && nu->unit.empty()) return nu->number;
  return fail("expected a number such as 0.7, got \"{}\"", trim(text));
}

Result<Threshold> parse_threshold(std::string_view text, QuantityParser parse) {
  text = trim(text);
  Threshold t;
  if (text.starts_with(">=")) {
    t.op = Comparison::kGreaterEqual;
    text.remove_prefix(2);
  } else if (text.starts_with(">")) {
    t.op = Comparison::kGreater;
    text.remove_prefix(1);
  } else if (text.starts_with("<")) {
    return fail("only '>' and '>=' conditions are supported, got \"{}\"", text);
  } else {
    t.op = Comparison::kGreaterEqual;
  }
  auto v = parse(text);
  if (!v) return std::unexpected(v.error());
  t.value = *v;
  return t;
}

std::string format_bytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = std::fabs(bytes);
  int i = 0;
  while (v >= 1024 && i < 4) v /= 1024, ++i;
  if (bytes < 0) v = -v;
  if (i == 0) return fmt::format("{:.0f} B", v);
  return fmt::format("{:.1f} {}", v, kUnits[i]);
}

std::string format_rate(double bytes_per_s) {
  // Per minute reads best for memory growth; per second once it gets large.
  double per_min = bytes_per_s * 60;
  std::string sign = bytes_per_s > 0 ? "+" : "";
  if (std::fabs(bytes_per_s) >= 1024.0 * 1024.0) return sign + format_bytes(bytes_per_s) + "/s";
  return sign + format_bytes(per_min) + "/min";
}

std::string format_duration(double seconds) {
  long s = std::lround(std::max(0.0, seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

}  // namespace leakwatch::agent
