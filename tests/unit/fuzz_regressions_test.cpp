// Inputs the fuzz targets (tests/fuzz) found to break a parser, kept in
// tests/fuzz/regressions/TARGET/, with what the fixed parser must do with them.
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstring>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/report_store.h"
#include "common/atomic_file.h"
#include "inject/seccomp_check.h"
#include "report/html_writer.h"

namespace leakwatch {
namespace {

std::string regression(const std::string& target, const std::string& name) {
  auto text = read_file(std::string(LEAKWATCH_SOURCE_DIR) + "/tests/fuzz/regressions/" + target +
                        "/" + name);
  EXPECT_TRUE(text) << target << "/" << name;
  return text.value_or("");
}

// fuzz_report_index: a field of another type ("target": 2) made nlohmann's value() throw
// out of the agent's start-up.  Such an entry is now skipped; the others are kept.
TEST(FuzzRegressions, IndexEntryWithAFieldOfAnotherTypeIsSkipped) {
  auto entries = agent::parse_index(regression("report_index", "field-of-another-type.json"));
  ASSERT_TRUE(entries) << entries.error().message;
  EXPECT_TRUE(entries->empty());

  auto mixed = agent::parse_index(R"([
    {"id": "a", "pid": 1e300},
    {"id": "b", "files": ["report.json", 3]},
    {"id": "c", "growth": {"stacks": -1}},
    {"id": "d", "growth": 7},
    {"id": "good", "pid": 42, "duration_s": 1, "files": ["report.json"], "growth": null}
  ])");
  ASSERT_TRUE(mixed);
  ASSERT_EQ(mixed->size(), 1u);
  EXPECT_EQ(mixed->front().id, "good");
  EXPECT_EQ(mixed->front().pid, 42);
  EXPECT_FALSE(mixed->front().growth.has_value());
}

// Found reading the same code: an id is a directory that pruning removes recursively, so
// an id or a file name that leaves reports_dir is refused.
TEST(FuzzRegressions, IndexEntryLeavingTheReportsDirIsSkipped) {
  auto entries = agent::parse_index(R"([
    {"id": ".."}, {"id": "."}, {"id": "../etc"}, {"id": "a/b"}, {"id": ""},
    {"id": "ok", "files": ["../../etc/passwd"]},
    {"id": "20260101T000000Z-x-1", "files": ["report.json", "growth.json"]}
  ])");
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ(entries->front().id, "20260101T000000Z-x-1");
}

// fuzz_html_report: `leakwatch report FILE --format html` renders any JSON object whose kind
// is "growth".  A field of another type, or a stack that is not an object, made nlohmann's
// value() throw out of the writer, and a report without "target" was read through const
// operator[] (undefined for a missing key).  Such fields now take their defaults.
TEST(FuzzRegressions, GrowthHtmlOfFieldsOfAnotherTypeUsesDefaults) {
  using Json = nlohmann::ordered_json;
  const Json g = Json::parse(regression("html_report", "fields-of-another-type.json"));
  const Json data = report::html_growth_data(g);
  EXPECT_EQ(data["sample_period"], 1);
  EXPECT_EQ(data["final"], false);
  ASSERT_EQ(data["stacks"].size(), 2u);
  EXPECT_EQ(data["stacks"][1]["pid"], 0);
  EXPECT_EQ(data["stacks"][1]["id"], "0");
  ASSERT_EQ(data["frames"].size(), 1u);
  EXPECT_EQ(data["frames"][0], Json::array({"", "", "", 0}));
  const Json mem = report::html_report_data(g);
  ASSERT_EQ(mem["timeline"]["stacks"].size(), 2u);
  EXPECT_EQ(mem["timeline"]["stacks"][0], 3);
  EXPECT_EQ(mem["timeline"]["stacks"][1]["stack_id"], "5");
  EXPECT_NE(report::write_growth_html(g).find("Memory growth report"), std::string::npos);

  const Json bare = Json::parse(regression("html_report", "no-target.json"));
  const std::string page = report::write_growth_html(bare);
  EXPECT_NE(page.find("<title>Memory growth report</title>"), std::string::npos);
}

// fuzz_seccomp_filter: one program (first byte 0) whose load's offset wraps 32 bits
// (k = 0xfffffffc, so k + 4 was 0) read outside seccomp_data.  Now an invalid program.
TEST(FuzzRegressions, SeccompLoadWhoseOffsetWrapsIsAnInvalidProgram) {
  const std::string bytes = regression("seccomp_filter", "load-offset-wraps.bin");
  ASSERT_EQ(bytes.size(), 1 + 2 * sizeof(sock_filter));
  std::vector<sock_filter> prog(2);
  std::memcpy(prog.data(), bytes.data() + 1, 2 * sizeof(sock_filter));
  seccomp_data d{};
  d.arch = AUDIT_ARCH_X86_64;
  EXPECT_EQ(inject::run_seccomp_filter(prog, d), SECCOMP_RET_KILL_PROCESS);
}

// fuzz_agent_config: ",&" and a byte that is not UTF-8: yaml-cpp 0.7's LoadAll never
// returned (a fuzz timeout).  Now the documents are counted with a bound: a plain error.
TEST(FuzzRegressions, YamlOnWhichLoadAllNeverReturnsIsAnError) {
  auto c = agent::parse_config(regression("agent_config", "loadall-never-returns.yaml"), "f.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("f.yaml"), std::string::npos) << c.error().message;
}

}  // namespace
}  // namespace leakwatch
