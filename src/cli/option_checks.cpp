#include "cli/option_checks.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "common/atomic_file.h"
#include "common/units.h"

namespace leakwatch::cli {

const CLI::Validator& not_negative() {
  static const CLI::Validator v(
      [](std::string& text) -> std::string {
        size_t i = text.find_first_not_of(" \t");
        if (i != std::string::npos && text[i] == '-')
          return "must not be negative, got " + text;
        return "";
      },
      "", "not negative");
  return v;
}

const CLI::Validator& finite_number() {
  static const CLI::Validator v(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        double x = std::strtod(text.c_str(), &end);
        if (end != text.c_str() && !std::isfinite(x))
          return "expected a finite number, got " + text;
        return "";  // not a number at all: CLI11's conversion says so
      },
      "", "finite");
  return v;
}

Result<void> check_output_option(const std::string& path) {
  if (auto r = check_output_path(path); !r) return fail("--output {}", r.error().message);
  return {};
}

namespace {

// MemTotal from /proc/meminfo, bytes (0 when unreadable).
uint64_t host_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024;
    in.ignore(256, '\n');
  }
  return 0;
}

}  // namespace

Result<void> check_map_memory(uint64_t max_allocs, uint64_t alloc_entry_bytes,
                              uint64_t max_stacks, uint64_t stack_entry_bytes) {
  const double need = static_cast<double>(max_allocs) * static_cast<double>(alloc_entry_bytes) +
                      static_cast<double>(max_stacks) * static_cast<double>(stack_entry_bytes);
  // The kernel sizes a hash map's bucket array to the next power of two of its entries,
  // 16 bytes a bucket, and refuses more than 4 GiB of buckets.
  constexpr uint64_t kMaxHashEntries = uint64_t{1} << 28;
  for (auto [flag, entries] : {std::pair{"--max-allocs", max_allocs},
                               std::pair{"--max-stacks", max_stacks}})
    if (entries > kMaxHashEntries)
      return fail("{} {}: at most {} entries (the kernel's limit for a hash map; the maps would "
                  "take about {} of kernel memory when full)",
                  flag, entries, kMaxHashEntries, format_size(need));
  const uint64_t host = host_memory_bytes();
  if (host > 0 && need > static_cast<double>(host) / 2) {
    std::string flags = fmt::format("--max-stacks {}", max_stacks);
    std::string sizes = fmt::format("{} a stack", format_size(static_cast<double>(stack_entry_bytes)));
    if (max_allocs > 0) {
      flags = fmt::format("--max-allocs {} and {}", max_allocs, flags);
      sizes = fmt::format("{} bytes an allocation, {}", alloc_entry_bytes, sizes);
    }
    return fail("{}: the BPF maps would take about {} of kernel memory when full ({}), more "
                "than half of this host's {}",
                flags, format_size(need), sizes, format_size(static_cast<double>(host)));
  }
  return {};
}

}  // namespace leakwatch::cli
