// --unwind: whole stacks through code without frame pointers (the fixture is built -O2
// -fomit-frame-pointer, and Debian's libc and libstdc++ have none either).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

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
  // In-process mode unwinds from the caller of malloc as the hook saw it (the preload
  // wrapper's frame record), so the same stacks come out.
  for (std::vector<std::string> mode : {std::vector<std::string>{"--unwind", "auto"},
                                        std::vector<std::string>{"--unwind", "dwarf", "-s", "2"},
                                        std::vector<std::string>{"--unwind", "dwarf", "-s", "2", "--no-inprocess"},
                                        std::vector<std::string>{"--unwind", "auto", "--inprocess"}}) {
    SCOPED_TRACE(mode.back());
    auto run = memleak_command(fixture("ml_nofp_nofp"), mode);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed);
    const auto& r = run.report;
    bool sampled = std::find(mode.begin(), mode.end(), "-s") != mode.end();
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
      // 1-in-2 sampling of 4 calls: none sampled in 1 run of 16, so only the shape is held.
      EXPECT_LE(chain_bytes, 4 * 4000.0) << describe(r);
      EXPECT_EQ(std::fmod(chain_bytes, 4000.0), 0.0) << describe(r);
    }
    EXPECT_EQ(r.lost.at("snapshots_lost"), 0u);
    EXPECT_EQ(r.lost.at("unwind_failed"), 0u);
  }
}

TEST_F(MemleakUnwind, StdStringGrowthThroughLibstdcxx) {
  for (bool inprocess : {false, true}) {
    SCOPED_TRACE(inprocess ? "in-process" : "attach");
    std::vector<std::string> args = {"--unwind", "dwarf"};
    if (inprocess) args.push_back("--inprocess");
    auto run = memleak_command(fixture("ml_string_nofp"), args);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    ASSERT_TRUE(run.parsed);
    bool reach = false;
    double bytes = bytes_through(run.report, "grow_string", &reach);
    EXPECT_TRUE(reach) << describe(run.report);
    // Three strings of 205 characters: each holds its final 241-byte buffer (capacity 240),
    // plus the std::string object itself (32 bytes) allocated by new in grow_string.
    EXPECT_EQ(bytes, 3 * (241.0 + 32.0)) << describe(run.report);
  }
}

TEST_F(MemleakUnwind, FramePointerModeRecoversTheCallerOfAFramelessHelper) {
  // With frame pointers only, rbp at malloc's return still belongs to the code that called
  // strdup, so the chain alone skips that caller; the capture finds its return address on
  // the stack between sp and rbp (a call into strdup), even in a binary without frame
  // pointers, where the chain after it is not to be trusted.
  auto run = memleak_command(fixture("ml_nofp_nofp"), {"--unwind", "fp"});
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  ASSERT_TRUE(run.parsed);
  bool reach = false;
  EXPECT_EQ(bytes_through(run.report, "save_name", &reach), 3 * 25.0) << describe(run.report);
  for (const auto& s : run.report.stacks) {
    int at = frame_index(s, "save_name");
    if (at < 0) continue;
    EXPECT_EQ(at, 1) << describe(run.report);
    EXPECT_NE(s.frames[0].function.find("strdup"), std::string::npos) << describe(run.report);
  }
}

}  // namespace
}  // namespace leakwatch::testing
