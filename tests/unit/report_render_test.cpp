#include <gtest/gtest.h>

#include "report/folded_writer.h"
#include "report/json_writer.h"
#include "report/render.h"
#include "report/text_writer.h"
#include "report_testing.h"

namespace leakwatch::report {
namespace {

using namespace testing;

TEST(ReportRender, ParseFormat) {
  EXPECT_EQ(parse_format("text"), Format::kText);
  EXPECT_EQ(parse_format("json"), Format::kJson);
  EXPECT_EQ(parse_format("pprof"), Format::kPprof);
  EXPECT_EQ(parse_format("folded"), Format::kFolded);
  EXPECT_EQ(parse_format("JSON"), std::nullopt);
  EXPECT_EQ(parse_format(""), std::nullopt);
  EXPECT_EQ(parse_format("html"), Format::kHtml);
  EXPECT_EQ(parse_format("svg"), std::nullopt);
  for (Format f : {Format::kText, Format::kJson, Format::kPprof, Format::kFolded, Format::kHtml})
    EXPECT_EQ(parse_format(to_string(f)), f);
}

TEST(ReportRender, DispatchesToTheWriters) {
  Report r = exact_report();
  TextOptions o;
  o.time_hhmmss = "10:00:00";
  EXPECT_EQ(render(r, Format::kText, o).value(), write_bcc_text(r, o));
  EXPECT_EQ(render(r, Format::kJson, o).value(), write_json(r));
  EXPECT_EQ(render(r, Format::kFolded, o).value(), write_folded(r));
  auto pprof = render(r, Format::kPprof, o);
  ASSERT_TRUE(pprof);
  EXPECT_EQ(static_cast<unsigned char>((*pprof)[0]), 0x1f);
}

}  // namespace
}  // namespace leakwatch::report
