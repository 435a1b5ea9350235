// -c's command words: quoting, and the environment words taken out so that the program
// itself is the target.
#include "session/child_process.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace leakwatch::session {
namespace {

using Words = std::vector<std::string>;

TEST(SplitCommand, QuotesAndEscapes) {
  auto w = split_command(R"(./server --name "a b" 'c d' e\ f)");
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, (Words{"./server", "--name", "a b", "c d", "e f"}));
  EXPECT_FALSE(split_command("./server 'open"));
  EXPECT_FALSE(split_command("   "));
}

TEST(TakeEnvironment, EnvAndLeadingAssignmentsLeaveTheProgram) {
  auto c = take_environment({"env", "LD_PRELOAD=/usr/lib/libjemalloc.so.2", "MALLOC_CONF=a:1", "./server", "-x"});
  EXPECT_EQ(c.argv, (Words{"./server", "-x"}));
  EXPECT_EQ(c.changes, (Words{"LD_PRELOAD=/usr/lib/libjemalloc.so.2", "MALLOC_CONF=a:1"}));

  c = take_environment({"LD_PRELOAD=/x.so", "./server"});  // as a shell reads it
  EXPECT_EQ(c.argv, (Words{"./server"}));
  EXPECT_EQ(c.changes, (Words{"LD_PRELOAD=/x.so"}));

  // Unsets in order with the sets; `--`; a path to env; env after assignments.
  c = take_environment({"A=1", "/usr/bin/env", "-u", "A", "--unset=B", "--", "C=3", "prog", "D=4"});
  EXPECT_EQ(c.argv, (Words{"prog", "D=4"}));
  EXPECT_EQ(c.changes, (Words{"A=1", "A", "B", "C=3"}));
}

TEST(TakeEnvironment, WhatIsNotPlainEnvironmentIsLeftWhole) {
  for (const Words& w : {Words{"./server", "A=1"}, Words{"env", "-i", "A=1", "prog"},
                         Words{"env", "-C", "/tmp", "prog"}, Words{"env", "A=1"}, Words{"env"},
                         Words{"A=1"}, Words{"envoy", "A=1"}, Words{"1A=2", "prog"},
                         Words{"=x", "prog"}, Words{"env", "-u"}}) {
    auto c = take_environment(w);
    EXPECT_EQ(c.argv, w) << w[0];
    EXPECT_TRUE(c.changes.empty()) << w[0];
  }
}

TEST(TakeEnvironment, AppliedToThisProcessForTheCommandToInherit) {
  ::setenv("LW_CHILD_TEST_GONE", "x", 1);
  auto argv = apply_command_environment({"env", "-u", "LW_CHILD_TEST_GONE", "LW_CHILD_TEST_SET=a=b", "prog"});
  EXPECT_EQ(argv, (Words{"prog"}));
  EXPECT_EQ(std::getenv("LW_CHILD_TEST_GONE"), nullptr);
  ASSERT_NE(std::getenv("LW_CHILD_TEST_SET"), nullptr);
  EXPECT_STREQ(std::getenv("LW_CHILD_TEST_SET"), "a=b");
  ::unsetenv("LW_CHILD_TEST_SET");
}

}  // namespace
}  // namespace leakwatch::session
