// --unwind and --snapshot-size parsing, and the auto decision on real objects: this test
// program (built with the project's flags) and the C library it runs with.
#include <gtest/gtest.h>
#include <link.h>

#include <string>

#include "session/unwind_choice.h"

namespace leakwatch::session {
namespace {

TEST(UnwindChoice, ParsesModesAndSizes) {
  EXPECT_EQ(parse_unwind("auto").value(), Unwind::kAuto);
  EXPECT_EQ(parse_unwind("fp").value(), Unwind::kFramePointers);
  EXPECT_EQ(parse_unwind("dwarf").value(), Unwind::kDwarf);
  auto bad = parse_unwind("cfi");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "--unwind: unknown mode 'cfi' (fp, dwarf, auto)");
  EXPECT_EQ(parse_snapshot_size("8K").value(), 8192u);
  EXPECT_EQ(parse_snapshot_size("512").value(), 512u);
  EXPECT_FALSE(parse_snapshot_size("511"));
  EXPECT_FALSE(parse_snapshot_size("17K"));
  EXPECT_FALSE(parse_snapshot_size("lots"));
}

std::string libc_path() {
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        std::string name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("/libc.so") != std::string::npos) *static_cast<std::string*>(out) = name;
        return 0;
      },
      &found);
  return found;
}

TEST(UnwindChoice, AutoExaminesEveryObject) {
  // Asked for: no object is examined.
  EXPECT_TRUE(choose_unwind(Unwind::kDwarf, {"/nonexistent"}).dwarf);
  EXPECT_FALSE(choose_unwind(Unwind::kFramePointers, {"/nonexistent"}).dwarf);
  // Nothing that can be examined: frame pointers.
  UnwindChoice none = choose_unwind(Unwind::kAuto, {"", "/nonexistent/object"});
  EXPECT_FALSE(none.dwarf);
  EXPECT_NE(none.why.find("no object could be examined"), std::string::npos) << none.why;
  // Debian's C library keeps no frame pointers: one such object makes it DWARF, whatever
  // comes before it.
  std::string libc = libc_path();
  ASSERT_FALSE(libc.empty());
  UnwindChoice with_libc = choose_unwind(Unwind::kAuto, {"/proc/self/exe", libc});
  EXPECT_TRUE(with_libc.dwarf) << with_libc.why;
  EXPECT_NE(with_libc.why.find("DWARF unwinding (auto)"), std::string::npos) << with_libc.why;
}

}  // namespace
}  // namespace leakwatch::session
