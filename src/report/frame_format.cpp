#include "report/frame_format.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace leakwatch::report {

bool is_kernel_frame(const Frame& f) { return f.module == "[kernel]" || f.module == "kernel"; }

std::string path_basename(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The module as BCC prints it: a basename without brackets ("libc.so.6", "kernel").
static std::string bare_module(const Frame& f, bool kernel_mode) {
  if (is_kernel_frame(f) || (kernel_mode && f.module.empty() && f.module_path.empty()))
    return "kernel";
  if (!f.module.empty()) return path_basename(f.module);
  return path_basename(f.module_path);
}

std::string bcc_symbol(const Frame& f, bool kernel_mode) {
  std::string out = f.function.empty() ? std::string("[unknown]")
                                       : fmt::format("{}+{:#x}", f.function, f.offset);
  std::string module = bare_module(f, kernel_mode);
  if (!module.empty()) out += fmt::format(" [{}]", module);
  return out;
}

std::string frame_label(const Frame& f) {
  if (!f.function.empty()) return f.function;
  if (is_kernel_frame(f)) return "[kernel]";
  std::string module = f.module.empty() ? path_basename(f.module_path) : f.module;
  if (!module.empty()) return fmt::format("[{}]", module);
  return fmt::format("{:#x}", f.address);
}

int64_t round_to_i64(double v) {
  if (std::isnan(v)) return 0;
  constexpr double kMax = 9.2e18;  // below INT64_MAX, exactly representable
  if (v >= kMax) return std::numeric_limits<int64_t>::max();
  if (v <= -kMax) return std::numeric_limits<int64_t>::min();
  return std::llround(v);
}

}  // namespace leakwatch::report
