#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <sstream>

#include "report/text_writer.h"
#include "report_testing.h"

namespace leakwatch::report {
namespace {

using namespace testing;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ReportText, ExactMatchesGolden) {
  TextOptions o;
  o.time_hhmmss = "11:16:33";
  o.show_allocs = true;
  expect_golden("text_exact.txt", write_bcc_text(exact_report(), o));
}

TEST(ReportText, SampledMatchesGolden) {
  TextOptions o;
  o.time_hhmmss = "09:00:01";
  o.top = 5;
  expect_golden("text_sampled.txt", write_bcc_text(sampled_report(), o));
}

TEST(ReportText, KernelFramesPrintAsBccDoes) {
  TextOptions o;
  o.time_hhmmss = "00:00:05";
  o.kernel = true;
  std::string text = write_bcc_text(kernel_report(), o);
  expect_golden("text_kernel.txt", text);
  EXPECT_NE(text.find("\t\t0xffffffff812a6b10\tkmalloc_trace+0x2d [kernel]\n"), std::string::npos);
  // no module in the frame, but kernel mode: BCC's ksym() names the module "kernel"
  EXPECT_NE(text.find("\tbpf_prog_load+0x4c0 [kernel]\n"), std::string::npos);
}

// What BCC-era parsers do with the output: count lines by regex, frames by "\t\t".
TEST(ReportText, BccParsersSeeOnlyBccLines) {
  TextOptions o;
  o.time_hhmmss = "09:00:01";
  const std::regex count_re(R"((\d+) bytes in (\d+) allocations from stack)");
  for (const Report& r : {exact_report(), sampled_report()}) {
    std::string text = write_bcc_text(r, o);
    std::vector<std::pair<uint64_t, uint64_t>> counts;
    size_t frames = 0;
    for (const std::string& line : split_lines(text)) {
      std::smatch m;
      if (std::regex_search(line, m, count_re)) {
        EXPECT_TRUE(line.starts_with("\t") && !line.starts_with("\t\t")) << line;
        counts.emplace_back(std::stoull(m[1]), std::stoull(m[2]));
      }
      if (line.starts_with("\t\t")) {
        ++frames;
        EXPECT_TRUE(std::regex_match(line, std::regex("\t\t0x[0-9a-f]{16}\t.+"))) << line;
      }
      EXPECT_TRUE(std::all_of(line.begin(), line.end(),
                              [](char c) { return c == '\t' || (c >= ' ' && c <= '~'); }))
          << "not printable ASCII: " << line;
    }
    ASSERT_EQ(counts.size(), r.stacks.size());
    size_t expected_frames = 0;
    for (size_t i = 0; i < r.stacks.size(); ++i) {
      // the sampled (BCC-comparable) figures, not the estimates
      EXPECT_EQ(counts[i].first, static_cast<uint64_t>(r.stacks[i].bytes.sampled));
      EXPECT_EQ(counts[i].second, static_cast<uint64_t>(r.stacks[i].count.sampled));
      expected_frames += r.stacks[i].frames.size();
    }
    EXPECT_EQ(frames, expected_frames);
  }
}

TEST(ReportText, TopLimitsStacksButHeaderShowsRequestedNumber) {
  TextOptions o;
  o.time_hhmmss = "11:16:33";
  o.top = 1;
  std::string text = write_bcc_text(exact_report(), o);
  EXPECT_TRUE(text.starts_with("[11:16:33] Top 1 stacks with outstanding allocations:\n"));
  EXPECT_NE(text.find("\t1048576 bytes in 256 allocations from stack\n"), std::string::npos);
  EXPECT_EQ(text.find("65536 bytes"), std::string::npos);
  o.top = 50;
  EXPECT_TRUE(write_bcc_text(exact_report(), o).starts_with("[11:16:33] Top 50 stacks"));
}

TEST(ReportText, OptionalLines) {
  TextOptions o;
  o.time_hhmmss = "11:16:33";
  o.show_verdicts = false;
  Report r = exact_report();
  std::string text = write_bcc_text(r, o);
  EXPECT_EQ(text.find("verdict:"), std::string::npos);
  EXPECT_EQ(text.find("addr = "), std::string::npos);  // show_allocs off
  EXPECT_EQ(text.find("estimated:"), std::string::npos);  // exact: no estimate line
  EXPECT_NE(text.find("\tlost: attach_failed=1\n"), std::string::npos);

  r.lost["attach_failed"] = 0;
  r.notes.clear();
  text = write_bcc_text(r, o);
  EXPECT_EQ(text.find("lost:"), std::string::npos);  // nothing lost: no footer
  EXPECT_EQ(text.find("note:"), std::string::npos);
}

TEST(ReportText, FreeTextCannotBreakLines) {
  Report r = exact_report();
  r.stacks[0].reason = "two\nlines";
  r.notes = {"a\nb"};
  TextOptions o;
  std::string text = write_bcc_text(r, o);
  EXPECT_NE(text.find(": two lines\n"), std::string::npos);
  EXPECT_NE(text.find("\tnote: a b\n"), std::string::npos);
}

TEST(ReportText, EmptyReport) {
  TextOptions o;
  o.time_hhmmss = "01:02:03";
  EXPECT_EQ(write_bcc_text(Report{}, o),
            "[01:02:03] Top 10 stacks with outstanding allocations:\n");
}

}  // namespace
}  // namespace leakwatch::report
