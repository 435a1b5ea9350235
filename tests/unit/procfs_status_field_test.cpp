// "Key:\tvalue" lines of /proc/PID/status (common/procfs.h status_field).
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "common/procfs.h"

namespace leakwatch {
namespace {

constexpr const char* kStatus =
    "Name:\tmy prog\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "PPid:\t1\n"
    "TracerPid:\t0\n"
    "VmRSS:\t    1234 kB\n"
    "Empty:\n";

TEST(StatusField, ValueAfterTheKeyWithoutLeadingBlanks) {
  EXPECT_EQ(status_field(kStatus, "Name"), "my prog");
  EXPECT_EQ(status_field(kStatus, "State"), "S (sleeping)");
  EXPECT_EQ(status_field(kStatus, "VmRSS"), "1234 kB");
  EXPECT_EQ(status_field(kStatus, "Empty"), "");
}

TEST(StatusField, WholeKeysOnly) {
  EXPECT_EQ(status_field(kStatus, "Pid"), "");        // not TracerPid's or PPid's tail
  EXPECT_EQ(status_field(kStatus, "Tracer"), "");     // not a prefix of TracerPid
  EXPECT_EQ(status_field(kStatus, "TracerPid"), "0");
  EXPECT_EQ(status_field("", "Name"), "");
  EXPECT_EQ(status_field("Name:\tlast line without newline", "Name"), "last line without newline");
}

TEST(StatusField, OfThisProcess) {
  EXPECT_EQ(process_status_field(::getpid(), "Tgid"), std::to_string(::getpid()));
  EXPECT_EQ(process_status_field(-1, "Tgid"), "");
}

}  // namespace
}  // namespace leakwatch
