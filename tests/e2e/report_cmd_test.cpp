// End-to-end: `leakwatch report` re-renders, diffs and alerts on saved reports.  The JSON
// inputs are made by `leakwatch memleak` on fixtures with exactly known leaks (ml_short:
// 3 x 999 B from leak_short; ml_many N 256: N x 256 B from leak_many); the BCC inputs are
// the checked-in BCC memleak samples in tests/data/report.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "common/atomic_file.h"
#include "report/bcc_text_reader.h"
#include "report/json_writer.h"
#include "support/process.h"

namespace leakwatch::testing {
namespace {

const std::string kData = LEAKWATCH_TEST_DATA;
const std::string kBcc = kData + "/report/bcc_memleak_output.txt";          // BCC 2023+
const std::string kBccOld = kData + "/report/bcc_memleak_output_old.txt";   // older BCC
const std::string kGolden = kData + "/report_cmd/";

RunResult report_cmd(std::vector<std::string> args) {
  args.insert(args.begin(), {leakwatch(), "report"});
  return run_argv(args);
}

std::string describe(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

report::Report read_report(const std::string& path) {
  auto text = read_file(path);
  EXPECT_TRUE(text.has_value()) << path;
  if (!text) return {};
  auto rep = report::read_json(*text);
  EXPECT_TRUE(rep.has_value()) << path << ": " << rep.error().message;
  return rep ? *rep : report::Report{};
}

// One line on stderr naming the problem, nothing on stdout.
void expect_one_line_error(const RunResult& r, int code, const std::string& needle) {
  EXPECT_EQ(r.exit_code, code) << describe(r);
  EXPECT_TRUE(r.out.empty()) << describe(r);
  EXPECT_EQ(lines_of(r.err).size(), 1u) << describe(r);
  EXPECT_NE(r.err.find(needle), std::string::npos) << describe(r);
}

// `leakwatch memleak -c COMMAND -o 0 --format json --output F`; returns F or "".
std::string saved_report(const std::string& command, const std::string& name) {
  std::string path = temp_path(name);
  RunResult r = run_argv({leakwatch(), "memleak", "-c", command, "-o", "0", "--format", "json",
                          "--output", path});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  struct stat st;
  return r.exit_code == 0 && ::stat(path.c_str(), &st) == 0 ? path : "";
}

// ---------------------------------------------------------------------------------------
// Saved leakwatch JSON reports (need real BPF to make them).

class ReportJson : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (have_bpf()) short_json_ = saved_report(fixture("ml_short"), "short.json");
  }
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "making the JSON input needs root and /sys/kernel/btf/vmlinux";
    ASSERT_FALSE(short_json_.empty()) << "leakwatch memleak on ml_short failed";
  }
  static std::string short_json_;
};
std::string ReportJson::short_json_;

TEST_F(ReportJson, ToBccText) {
  RunResult r = report_cmd({short_json_});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(r.err.empty()) << describe(r);
  EXPECT_TRUE(r.out.starts_with("[")) << r.out;
  EXPECT_NE(r.out.find("] Top 10 stacks with outstanding allocations:\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\t2997 bytes in 3 allocations from stack\n"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex("\t\t0x[0-9a-f]{16}\tleak_short\\+0x[0-9a-f]+ \\[ml_short\\]\n")))
      << r.out;
  // What BCC-era parsers read from it is what the JSON says.
  auto bcc = report::read_bcc_text(r.out, 1);
  ASSERT_TRUE(bcc.has_value()) << bcc.error().message;
  report::Report json = read_report(short_json_);
  ASSERT_EQ(bcc->stacks.size(), json.stacks.size()) << r.out;
  for (size_t i = 0; i < json.stacks.size(); ++i) {
    EXPECT_EQ(bcc->stacks[i].bytes.sampled, json.stacks[i].bytes.sampled);
    EXPECT_EQ(bcc->stacks[i].count.sampled, json.stacks[i].count.sampled);
    ASSERT_EQ(bcc->stacks[i].frames.size(), json.stacks[i].frames.size());
    for (size_t f = 0; f < json.stacks[i].frames.size(); ++f) {
      EXPECT_EQ(bcc->stacks[i].frames[f].address, json.stacks[i].frames[f].address);
      EXPECT_EQ(bcc->stacks[i].frames[f].function, json.stacks[i].frames[f].function);
    }
  }
}

TEST_F(ReportJson, ToJsonIsTheSameReport) {
  std::string out = temp_path("again.json");
  RunResult r = report_cmd({short_json_, "--format", "json", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(r.out.empty()) << describe(r);  // the report went to the file
  EXPECT_EQ(read_report(out), read_report(short_json_));
  // Written atomically: no temporary file left next to it.
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(out).parent_path()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST_F(ReportJson, ToFolded) {
  RunResult r = report_cmd({short_json_, "--format", "folded"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // outermost;...;innermost bytes
  EXPECT_TRUE(std::regex_search(r.out, std::regex("(^|\n|;)main;leak_short 2997\n"))) << r.out;
}

TEST_F(ReportJson, ToPprofThatGoToolPprofReads) {
  std::string out = temp_path("short.pb.gz");
  RunResult r = report_cmd({short_json_, "--format", "pprof", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto data = read_file(out);
  ASSERT_TRUE(data.has_value());
  ASSERT_GE(data->size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>((*data)[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>((*data)[1]), 0x8b);

  if (run_argv({"sh", "-c", "command -v go"}).exit_code != 0)
    GTEST_SKIP() << "go is not installed: the profile was written but not read back";
  // go wants a writable HOME and build cache; keep them out of the user's.
  std::string home = temp_path("gohome"), cache = temp_path("gocache");
  std::filesystem::create_directories(home);
  std::filesystem::create_directories(cache);
  auto pprof_top = [&](const std::string& index, const std::string& unit) {
    return run_argv({"env", "HOME=" + home, "GOCACHE=" + cache, "go", "tool", "pprof", "-top",
                     "-unit=" + unit, "-sample_index=" + index, out});
  };
  RunResult space = pprof_top("inuse_space", "B");  // exact bytes, not "2.93kB"
  ASSERT_EQ(space.exit_code, 0) << describe(space);
  EXPECT_TRUE(std::regex_search(space.out, std::regex("\n +2997B +100% .* leak_short\n"))) << space.out;
  RunResult objects = pprof_top("inuse_objects", "minimum");
  ASSERT_EQ(objects.exit_code, 0) << describe(objects);
  EXPECT_TRUE(std::regex_search(objects.out, std::regex("\n +3 +100% .* leak_short\n"))) << objects.out;
}

TEST_F(ReportJson, SeveralInputsOneAfterAnother) {
  RunResult text = report_cmd({short_json_, short_json_});
  ASSERT_EQ(text.exit_code, 0) << describe(text);
  size_t headers = 0;
  for (const auto& line : lines_of(text.out))
    if (line.find("stacks with outstanding allocations:") != std::string::npos) ++headers;
  EXPECT_EQ(headers, 2u) << text.out;

  // JSON Lines: one compact object per input, each the saved report.
  RunResult json = report_cmd({short_json_, short_json_, "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << describe(json);
  auto lines = lines_of(json.out);
  ASSERT_EQ(lines.size(), 2u) << json.out;
  report::Report saved = read_report(short_json_);
  for (const auto& line : lines) {
    EXPECT_TRUE(line.starts_with("{\"version\":1,")) << line;
    auto rep = report::read_json(line);
    ASSERT_TRUE(rep.has_value()) << rep.error().message;
    EXPECT_EQ(*rep, saved);
  }

  // pprof is one profile: refused with a usage error before anything is written.
  std::string out = temp_path("two.pb.gz");
  RunResult pprof = report_cmd({short_json_, short_json_, "--format", "pprof", "--output", out});
  expect_one_line_error(pprof, 2, "one input");
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(ReportJson, AlertMediumAndOk) {
  // 2997 B = 0.0029 MB outstanding in a stack with verdict unknown (too short a run to say).
  ASSERT_EQ(read_report(short_json_).stacks.at(0).verdict, report::Verdict::kUnknown);
  RunResult medium = report_cmd({short_json_, "--alert-threshold", "0.001"});
  EXPECT_EQ(medium.exit_code, 4) << describe(medium);
  auto lines = lines_of(medium.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(lines.back().starts_with("ALERT medium: ")) << medium.out;
  EXPECT_NE(lines.back().find("top: leak_short [ml_short]"), std::string::npos) << medium.out;
  EXPECT_NE(medium.out.find("\t2997 bytes in 3 allocations from stack\n"), std::string::npos);

  RunResult ok = report_cmd({short_json_, "--alert-threshold", "1"});
  EXPECT_EQ(ok.exit_code, 0) << describe(ok);
  lines = lines_of(ok.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(lines.back().starts_with("OK: ")) << ok.out;

  // JSON on stdout stays valid JSON: the alert line goes to stderr.
  RunResult json = report_cmd({short_json_, "--format", "json", "--alert-threshold", "0.001"});
  EXPECT_EQ(json.exit_code, 4) << describe(json);
  EXPECT_TRUE(report::read_json(json.out).has_value()) << json.out;
  EXPECT_TRUE(json.err.starts_with("ALERT medium: ")) << json.err;
}

// ---------------------------------------------------------------------------------------
// Diff of two saved reports of ml_many: 1000 and 3000 leaked blocks of 256 B.

class ReportDiff : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_bpf()) return;
    base_ = saved_report(fixture("ml_many") + " 1000 256 0", "many1000.json");
    now_ = saved_report(fixture("ml_many") + " 3000 256 0", "many3000.json");
  }
  void SetUp() override {
    if (!have_bpf()) GTEST_SKIP() << "making the JSON inputs needs root and /sys/kernel/btf/vmlinux";
    ASSERT_FALSE(base_.empty() || now_.empty()) << "leakwatch memleak on ml_many failed";
  }
  static std::string base_, now_;
};
std::string ReportDiff::base_, ReportDiff::now_;

TEST_F(ReportDiff, LargestGrowthFirst) {
  std::string out = temp_path("diff.json");
  RunResult r = report_cmd({"--diff", base_, now_, "--format", "json", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  report::Report d = read_report(out);
  ASSERT_FALSE(d.stacks.empty());
  const auto& top = d.stacks[0];
  ASSERT_FALSE(top.frames.empty());
  EXPECT_EQ(top.frames[0].function, "leak_many");
  EXPECT_EQ(top.bytes.estimate, 2000 * 256.0);
  EXPECT_EQ(top.count.estimate, 2000);
  for (size_t i = 1; i < d.stacks.size(); ++i)
    EXPECT_LE(d.stacks[i].bytes.estimate, d.stacks[i - 1].bytes.estimate);

  RunResult text = report_cmd({"--diff", base_, now_});
  ASSERT_EQ(text.exit_code, 0) << describe(text);
  EXPECT_TRUE(std::regex_search(
      text.out, std::regex("Top 10 stacks with outstanding allocations:\n"
                           "\t512000 bytes in 2000 allocations from stack\n"
                           "\t\t0x[0-9a-f]{16}\tleak_many\\+0x[0-9a-f]+ \\[ml_many\\]\n")))
      << text.out;
  EXPECT_NE(text.out.find("\tnote: diff: "), std::string::npos) << text.out;

  RunResult folded = report_cmd({"--diff", base_, now_, "--format", "folded"});
  ASSERT_EQ(folded.exit_code, 0) << describe(folded);
  EXPECT_TRUE(std::regex_search(folded.out, std::regex("main;leak_many 512000\n"))) << folded.out;
}

TEST_F(ReportDiff, ShrinkingStacksAreNegativeAndLast) {
  std::string out = temp_path("rdiff.json");
  RunResult r = report_cmd({"--diff", now_, base_, "--format", "json", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  report::Report d = read_report(out);
  ASSERT_FALSE(d.stacks.empty());
  const auto& last = d.stacks.back();
  ASSERT_FALSE(last.frames.empty());
  EXPECT_EQ(last.frames[0].function, "leak_many");
  EXPECT_EQ(last.bytes.estimate, -2000 * 256.0);
  // Nothing grew: no alert, whatever the threshold.
  RunResult alert = report_cmd({"--diff", now_, base_, "--alert-threshold", "0"});
  EXPECT_EQ(alert.exit_code, 0) << describe(alert);
  EXPECT_TRUE(lines_of(alert.out).back().starts_with("OK: ")) << alert.out;
}

TEST_F(ReportDiff, AlertOnGrowth) {
  // 512000 B of growth = 0.49 MB: medium above 0.25 MB, nothing above 1 MB.
  RunResult medium = report_cmd({"--diff", base_, now_, "--alert-threshold", "0.25"});
  EXPECT_EQ(medium.exit_code, 4) << describe(medium);
  EXPECT_TRUE(lines_of(medium.out).back().starts_with("ALERT medium: ")) << medium.out;
  EXPECT_NE(medium.out.find("top: leak_many [ml_many] with 0.5 MB"), std::string::npos) << medium.out;
  RunResult ok = report_cmd({"--diff", base_, now_, "--alert-threshold", "1"});
  EXPECT_EQ(ok.exit_code, 0) << describe(ok);
}

// ---------------------------------------------------------------------------------------
// BCC memleak text (no privileges needed).

TEST(ReportBcc, SampleRateScalesToEstimates) {
  std::string out = temp_path("bcc.json");
  RunResult r = report_cmd({kBcc, "-s", "10", "--format", "json", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  report::Report rep = read_report(out);
  EXPECT_EQ(rep.sampling.mode, report::SamplingMode::kCalls);
  EXPECT_EQ(rep.sampling.rate, 10u);
  EXPECT_EQ(rep.target.pid, 24811);
  ASSERT_EQ(rep.stacks.size(), 4u);
  // The last block of the sample: 20480 B in 5 allocations from leak_fn, largest first.
  const auto& top = rep.stacks[0];
  EXPECT_EQ(top.frames.at(0).function, "leak_fn(unsigned long)");
  EXPECT_EQ(top.bytes.sampled, 20480);
  EXPECT_EQ(top.bytes.estimate, 204800);
  EXPECT_EQ(top.count.estimate, 50);
  EXPECT_LT(top.bytes.ci_lo, 204800);
  EXPECT_GT(top.bytes.ci_hi, 204800);
}

TEST(ReportBcc, GoldenText) {
  RunResult r = report_cmd({kBcc, "--sample-rate", "10"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto golden = read_file(kGolden + "bcc_s10.txt");
  ASSERT_TRUE(golden.has_value());
  EXPECT_EQ(r.out, *golden);
  // -T limits the text to the largest stacks; the header says so, as BCC's does.
  RunResult top2 = report_cmd({kBcc, "-s", "10", "-T", "2"});
  ASSERT_EQ(top2.exit_code, 0) << describe(top2);
  EXPECT_NE(top2.out.find("[14:02:11] Top 2 stacks"), std::string::npos) << top2.out;
  size_t stacks = 0;
  for (const auto& line : lines_of(top2.out))
    if (line.ends_with(" allocations from stack")) ++stacks;
  EXPECT_EQ(stacks, 2u) << top2.out;
}

TEST(ReportBcc, GoldenFolded) {
  RunResult r = report_cmd({kBcc, "-s", "10", "--format", "folded"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto golden = read_file(kGolden + "bcc_s10.folded");
  ASSERT_TRUE(golden.has_value());
  EXPECT_EQ(r.out, *golden);
}

TEST(ReportBcc, OlderBccWithoutAddresses) {
  RunResult r = report_cmd({kBccOld, "-s", "10"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // The last of three blocks, largest stack first.
  EXPECT_NE(r.out.find("[11:16:43] Top 10 stacks with outstanding allocations:\n"
                       "\t48 bytes in 1 allocations from stack\n"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\t  estimated: 480 bytes in 10 allocations"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\t  estimated: 320 bytes in 20 allocations"), std::string::npos) << r.out;
}

TEST(ReportBcc, ReadsStdin) {
  auto text = read_file(kBcc);
  ASSERT_TRUE(text.has_value());
  Proc p({leakwatch(), "report", "-", "-s", "10", "--format", "folded"});
  p.write(*text);
  p.close_stdin();
  int st = p.wait();
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << p.err();
  auto golden = read_file(kGolden + "bcc_s10.folded");
  ASSERT_TRUE(golden.has_value());
  EXPECT_EQ(p.out(), *golden);
}

TEST(ReportBcc, AlertHigh) {
  // 30720 sampled bytes x 4000 = 117 MB estimated (all verdicts unknown): high.
  RunResult r = report_cmd({kBcc, "-s", "4000", "--alert-threshold", "10"});
  EXPECT_EQ(r.exit_code, 5) << describe(r);
  std::string last = lines_of(r.out).back();
  EXPECT_TRUE(last.starts_with("ALERT high: ")) << last;
  EXPECT_NE(last.find("pid 24811"), std::string::npos) << last;
  EXPECT_NE(last.find(": 117.2 MB outstanding in 4 leak/unknown stacks"), std::string::npos) << last;
  EXPECT_NE(last.find("top: leak_fn(unsigned long) [leaky_demo] with 78.1 MB"), std::string::npos) << last;

  // Without -s the same file is 0.03 MB: medium above 0.01 MB.
  RunResult medium = report_cmd({kBcc, "--alert-threshold", "0.01"});
  EXPECT_EQ(medium.exit_code, 4) << describe(medium);

  // With --output the report goes to the file and the alert line to stdout.
  std::string out = temp_path("alert.txt");
  RunResult file = report_cmd({kBcc, "-s", "4000", "--alert-threshold", "10", "--output", out});
  EXPECT_EQ(file.exit_code, 5) << describe(file);
  EXPECT_EQ(lines_of(file.out).size(), 1u) << file.out;
  EXPECT_TRUE(file.out.starts_with("ALERT high: ")) << file.out;
  auto written = read_file(out);
  ASSERT_TRUE(written.has_value());
  EXPECT_NE(written->find("\t20480 bytes in 5 allocations from stack\n"), std::string::npos);

  // Several inputs: each alert line names its file; the exit status is the most severe
  // (the older sample is 80 B x 4000 = 0.3 MB, below the threshold).
  RunResult two = report_cmd({kBccOld, kBcc, "-s", "4000", "--alert-threshold", "10"});
  EXPECT_EQ(two.exit_code, 5) << describe(two);
  EXPECT_NE(two.out.find(kBccOld + ": OK: "), std::string::npos) << two.out;
  EXPECT_NE(two.out.find(kBcc + ": ALERT high: "), std::string::npos) << two.out;
}

// ---------------------------------------------------------------------------------------
// Errors: one line, exit 1 for bad input, 2 for a bad command line.

TEST(ReportErrors, BadInputs) {
  expect_one_line_error(report_cmd({"/nonexistent/report.json"}), 1, "/nonexistent/report.json");
  std::string junk = temp_path("junk.txt");
  ASSERT_TRUE(write_file_atomic(junk, "hello\nworld\n").has_value());
  expect_one_line_error(report_cmd({junk}), 1, junk + ": BCC text");
  std::string bad_json = temp_path("bad.json");
  ASSERT_TRUE(write_file_atomic(bad_json, "{\"version\": 1, \"stacks\": 3}\n").has_value());
  expect_one_line_error(report_cmd({bad_json}), 1, bad_json + ": ");
  std::string empty = temp_path("empty.txt");
  ASSERT_TRUE(write_file_atomic(empty, "\n").has_value());
  expect_one_line_error(report_cmd({empty}), 1, "empty input");
  // A bad input fails the whole run; nothing is written.
  std::string out = temp_path("never.txt");
  expect_one_line_error(report_cmd({kBcc, junk, "--output", out}), 1, junk);
  EXPECT_FALSE(std::filesystem::exists(out));
  expect_one_line_error(report_cmd({kBcc, "--output", "/nonexistent/dir/out.txt"}), 1,
                        "/nonexistent/dir/out.txt");
}

TEST(ReportErrors, BadCommandLines) {
  expect_one_line_error(report_cmd({}), 2, "no input");
  expect_one_line_error(report_cmd({kBcc, "--format", "xml"}), 2, "--format: unknown format 'xml'");
  expect_one_line_error(report_cmd({kBcc, "-T", "0"}), 2, "-T");
  expect_one_line_error(report_cmd({kBcc, "-s", "0"}), 2, "--sample-rate");
  expect_one_line_error(report_cmd({"-", "-"}), 2, "stdin");
  std::string json = temp_path("min.json");
  ASSERT_TRUE(write_file_atomic(json, "{\"version\": 1}\n").has_value());
  expect_one_line_error(report_cmd({json, "-s", "10"}), 2, "--sample-rate applies to BCC");
  // CLI11's own checks: exit 2 with its message.
  EXPECT_EQ(report_cmd({"--diff", kBcc}).exit_code, 2);
  EXPECT_EQ(report_cmd({kBcc, "--diff", kBcc, kBccOld}).exit_code, 2);
  EXPECT_EQ(report_cmd({kBcc, "--alert-threshold", "-1"}).exit_code, 2);
}

TEST(ReportHelp, ExplainsFormatsDiffAlertsAndExitStatus) {
  RunResult r = report_cmd({"--help"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  for (const char* s : {"--diff BASE NEW", "--format", "folded", "pprof", "--sample-rate",
                        "--alert-threshold", "4 medium alert", "5 high alert", "JSON Lines",
                        "Examples:", "leakwatch report --diff"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

}  // namespace
}  // namespace leakwatch::testing
