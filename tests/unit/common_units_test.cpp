// One size parser for the command line and the agent's configuration (common/units.h):
// K/M/G/T, Ki.. and KiB.. binary; KB/MB/GB/TB decimal.
#include <gtest/gtest.h>

#include "agent/units.h"
#include "common/units.h"

namespace leakwatch {
namespace {

TEST(Units, BinaryAndDecimalSizes) {
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("512K").value(), 512u * 1024);
  EXPECT_EQ(parse_size("512 KiB").value(), 512u * 1024);
  EXPECT_EQ(parse_size("16m").value(), 16u << 20);
  EXPECT_EQ(parse_size("2Gi").value(), 2ull << 30);
  EXPECT_EQ(parse_size("1MB").value(), 1000000u);
  EXPECT_EQ(parse_size("1.5GB").value(), 1500000000u);
  EXPECT_EQ(parse_size("3 b").value(), 3u);
  EXPECT_EQ(parse_size("1T").value(), 1ull << 40);
}

TEST(Units, BadSizes) {
  for (const char* bad : {"", "K", "-5", "nan", "inf", "1e3", "5 parsecs", "5MB/min", "99999999T"}) {
    EXPECT_FALSE(parse_size(bad)) << bad;
    EXPECT_FALSE(parse_bytes(bad)) << bad;
  }
}

TEST(Units, TheAgentReadsSizesAsTheCommandLineDoes) {
  for (const char* text : {"100MB", "64 KiB", "512K", "1.5GB", "2Gi", "4096", "7 M"})
    EXPECT_DOUBLE_EQ(agent::parse_size(text).value(), parse_bytes(text).value()) << text;
}

}  // namespace
}  // namespace leakwatch
