#include "session/unwind_choice.h"

#include <fmt/format.h>

#include "bpf/unwind.h"
#include "common/log.h"
#include "common/units.h"
#include "unwind/frame_pointers.h"

namespace leakwatch::session {

Result<Unwind> parse_unwind(const std::string& text) {
  if (text == "auto") return Unwind::kAuto;
  if (text == "fp") return Unwind::kFramePointers;
  if (text == "dwarf") return Unwind::kDwarf;
  return fail("--unwind: unknown mode '{}' (fp, dwarf, auto)", text);
}

Result<uint32_t> parse_snapshot_size(const std::string& text) {
  auto r = parse_size(text);
  if (!r) return fail("--snapshot-size: {}", r.error().message);
  if (*r < 512 || *r > LW_SNAPSHOT_MAX)
    return fail("--snapshot-size: must be between 512 and {} bytes", LW_SNAPSHOT_MAX);
  return static_cast<uint32_t>(*r);
}

UnwindChoice choose_unwind(Unwind mode, const std::vector<std::string>& objects) {
  if (mode == Unwind::kDwarf) return {true, "DWARF unwinding: asked (--unwind dwarf)"};
  if (mode == Unwind::kFramePointers) return {false, "frame pointers: asked (--unwind fp)"};
  size_t examined = 0;
  for (const auto& path : objects) {
    if (path.empty()) continue;
    auto check = unwind::check_frame_pointers(path);
    if (!check) {
      log::info("--unwind auto: cannot examine {}: {}", path, check.error().message);
      continue;
    }
    examined++;
    log::info("--unwind auto: {} of {} functions of {} set up a frame pointer", check->with_frame,
              check->functions, path);
    if (!check->keeps_frame_pointers())
      return {true, fmt::format("DWARF unwinding (auto): {} of {} functions of {} set up a "
                                "frame pointer", check->with_frame, check->functions, path)};
  }
  if (examined == 0) return {false, "frame pointers (auto): no object could be examined"};
  return {false, "frame pointers (auto): the objects examined keep them"};
}

}  // namespace leakwatch::session
