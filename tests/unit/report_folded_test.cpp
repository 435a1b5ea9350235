#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "report/folded_writer.h"
#include "report_testing.h"

namespace leakwatch::report {
namespace {

using namespace testing;

TEST(ReportFolded, MatchesGolden) {
  expect_golden("folded_exact.folded", write_folded(exact_report()));
  expect_golden("folded_sampled.folded", write_folded(sampled_report()));
}

// The line grammar flamegraph.pl and speedscope parse: frames separated by ';', then one
// space and an integer count.
TEST(ReportFolded, EveryLineParsesAsFolded) {
  const std::regex line_re(R"(^([^;\n]+)(;[^;\n]+)* (\d+)$)");
  for (const Report& r : {exact_report(), sampled_report(), kernel_report()}) {
    std::istringstream in(write_folded(r));
    size_t n = 0;
    for (std::string line; std::getline(in, line); ++n)
      EXPECT_TRUE(std::regex_match(line, line_re)) << line;
    EXPECT_EQ(n, r.stacks.size());
  }
}

TEST(ReportFolded, OrderEstimatesAndNames) {
  std::string out = write_folded(sampled_report());
  // root first, allocation site last; estimate rounded (52428800.5 -> 52428801)
  EXPECT_NE(out.find("__libc_start_call_main;Server::on_read(int);"
                     "Session::append(std::string_view) 52428801\n"),
            std::string::npos);
  // ';' inside a name must not split the frame
  EXPECT_NE(out.find(";Parser::on<':'>(char) 1310720\n"), std::string::npos) << out;
  std::string exact = write_folded(exact_report());
  EXPECT_NE(exact.find("[truncated];0x7ffd00001234;[libplugin.so] 4000\n"), std::string::npos)
      << exact;
}

TEST(ReportFolded, MergesSamePathsAndSkipsNonPositive) {
  Report r = exact_report();
  StackReport twin = r.stacks[0];
  for (Frame& f : twin.frames) f.address += 0x10;  // same functions, other addresses
  twin.bytes = exact(24);
  StackReport gone = r.stacks[1];
  gone.frames[0].function = "other";
  gone.bytes = exact(-100);  // e.g. a diff: shrinking stacks have no flame-graph width
  r.stacks.push_back(twin);
  r.stacks.push_back(gone);
  std::string out = write_folded(r);
  EXPECT_NE(out.find(";leak_fn(unsigned long) 1048600\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("other"), std::string::npos);
  EXPECT_EQ(write_folded(Report{}), "");
}

}  // namespace
}  // namespace leakwatch::report
