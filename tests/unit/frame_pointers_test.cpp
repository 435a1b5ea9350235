// check_frame_pointers on fixtures built with and without frame pointers, and on libc.
#include "unwind/frame_pointers.h"

#include <gtest/gtest.h>

#include <string>

namespace leakwatch::unwind {
namespace {

const std::string kFixtures = LEAKWATCH_FIXTURE_DIR;

FramePointerCheck check(const std::string& path) {
  auto c = check_frame_pointers(path);
  EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message);
  return c ? *c : FramePointerCheck{};
}

// GCC -O2 -fno-omit-frame-pointer schedules the frame setup among other instructions and
// shrink-wraps it behind early exits; the check must still find the frame pointer in
// (nearly) every function, from the CFI.
TEST(FramePointerCheck, OptimisedCodeWithFramePointersKeepsThem) {
  auto c = check(kFixtures + "/fp_records_o2fp");
  ASSERT_GE(c.functions, 5u);
  EXPECT_EQ(c.judged_by_cfi, c.functions);
  EXPECT_GE(c.with_frame * 10, c.functions * 9) << c.with_frame << " of " << c.functions;
  EXPECT_TRUE(c.keeps_frame_pointers());
}

TEST(FramePointerCheck, UnoptimisedCodeKeepsThem) {
  auto c = check(kFixtures + "/ml_cxx");
  ASSERT_GE(c.functions, 3u);
  EXPECT_TRUE(c.keeps_frame_pointers()) << c.with_frame << " of " << c.functions;
}

TEST(FramePointerCheck, CodeBuiltWithoutThemHasNone) {
  auto c = check(kFixtures + "/uw_cxx_nofp");
  ASSERT_GE(c.functions, 3u);
  EXPECT_EQ(c.judged_by_cfi, c.functions);
  EXPECT_LE(c.with_frame * 5, c.functions) << c.with_frame << " of " << c.functions;
  EXPECT_FALSE(c.keeps_frame_pointers());
}

TEST(FramePointerCheck, DebiansLibcHasNone) {
  auto c = check("/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_GE(c.functions, 50u);
  EXPECT_FALSE(c.keeps_frame_pointers()) << c.with_frame << " of " << c.functions;
}

TEST(FramePointerCheck, NotAnElfFileIsAnError) {
  EXPECT_FALSE(check_frame_pointers(std::string(LEAKWATCH_TEST_DATA) + "/report/text_exact.txt").has_value());
}

}  // namespace
}  // namespace leakwatch::unwind
