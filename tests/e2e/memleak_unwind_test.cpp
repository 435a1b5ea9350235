// --unwind: whole stacks through code without frame pointers (the fixture is built -O2
// -fomit-frame-pointer, and Debian's libc and libstdc++ have none either).
#include <gtest/gtest.h>

#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

class MemleakUnwind : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  }
};

// Index of the first frame of function `fn` (a C name, or a C++ name with its
// parameters), or -1.
int frame_index(const report::StackReport& s, const std::string& fn) {
  for (size_t i = 0; i < s.frames.size(); i++) {
    const std::string& f = s.frames[i].function;
    if (f == fn || f.rfind(fn + "(", 0) == 0) return static_cast<int>(i);
  }
  return -1;
}

// Stacks holding `fn` anywhere, with the bytes they hold.
double bytes_through(const report::Report& r, const std::string& fn, bool* all_reach_main) {
  double bytes = 0;
  *all_reach_main = true;
  for (const auto& s : r.stacks) {
    if (frame_index(s, fn) < 0) continue;
    bytes += s.bytes.sampled;
    if (frame_index(s, "main") < 0 || s.truncated) *all_reach_main = false;
  }
  return bytes;
}

TEST_F(MemleakUnwind, AutoUnwindsThroughLibcHelpersAndADeepChain) {
  for (std::vector<std::string> mode : {std::vector<std::string>{"--unwind", "auto"},
                                        std::vector<std::string>{"--unwind", "dwarf", "-s", "2"}}) {
    SCOPED_TRACE(mode.back());
    auto run = memleak_command(fixture("ml_nofp_nofp"), mode);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed);
    const auto& r = run.report;
    bool sampled = mode.size() > 2;
    bool reach = false;
    // strdup: the application function that called it is named, and main below it.
    double strdup_bytes = bytes_through(r, "save_name", &reach);
    EXPECT_TRUE(reach) << describe(r);
    if (!sampled) {
      EXPECT_EQ(strdup_bytes, 3 * 25.0) << describe(r);
    }
    for (const auto& s : r.stacks) {
      int i = frame_index(s, "save_name");
      if (i >= 0) {
        EXPECT_EQ(i, 1) << "strdup, then its caller";
        EXPECT_NE(s.frames[0].function.find("strdup"), std::string::npos);
      }
    }
    double asprintf_bytes = bytes_through(r, "format_message", &reach);
    EXPECT_TRUE(reach) << describe(r);
    if (!sampled) {
      EXPECT_EQ(asprintf_bytes, 2 * 14.0) << describe(r);
    }
    // The 10-deep chain: every level present, in order, down to main.
    double chain_bytes = 0;
    for (const auto& s : r.stacks) {
      if (frame_index(s, "depth10") != 0) continue;
      chain_bytes += s.bytes.sampled;
      for (int d = 10; d >= 1; d--)
        EXPECT_EQ(frame_index(s, "depth" + std::to_string(d)), 10 - d) << describe(r);
      EXPECT_EQ(frame_index(s, "main"), 10) << describe(r);
      EXPECT_FALSE(s.truncated);
    }
    if (!sampled) {
      EXPECT_EQ(chain_bytes, 4 * 4000.0) << describe(r);
    } else {
      EXPECT_GT(chain_bytes, 0) << describe(r);
    }
    EXPECT_EQ(r.lost.at("snapshots_lost"), 0u);
    EXPECT_EQ(r.lost.at("unwind_failed"), 0u);
  }
}

TEST_F(MemleakUnwind, StdStringGrowthThroughLibstdcxx) {
  auto run = memleak_command(fixture("ml_string_nofp"), {"--unwind", "dwarf"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  bool reach = false;
  double bytes = bytes_through(run.report, "grow_string", &reach);
  EXPECT_TRUE(reach) << describe(run.report);
  // Three strings of 205 characters: each holds its final 241-byte buffer (capacity 240),
  // plus the std::string object itself (32 bytes) allocated by new in grow_string.
  EXPECT_EQ(bytes, 3 * (241.0 + 32.0)) << describe(run.report);
}

TEST_F(MemleakUnwind, FramePointerModeLosesTheStrdupCaller) {
  // The contrast that motivates --unwind dwarf: with frame pointers only, the walk stops in
  // libc and the application function is missing.
  auto run = memleak_command(fixture("ml_nofp_nofp"), {"--unwind", "fp"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  bool reach = false;
  EXPECT_EQ(bytes_through(run.report, "save_name", &reach), 0) << describe(run.report);
}

}  // namespace
}  // namespace leakwatch::testing
