// The HTML report's data from JSON leakwatch did not necessarily write: `leakwatch report
// FILE --format html` renders any JSON object whose "kind" is "growth", and the agent's
// pages render the JSON files of reports_dir (html_report_data, html_growth_data).  The
// data is embedded in the page with json_for_script, which must keep every string inside
// the script element and read back as the same value; escape_html leaves no markup.
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "report/html.h"
#include "report/html_writer.h"

namespace {

using Json = nlohmann::ordered_json;

void check_embedded(const Json& data) {
  const std::string text = leakwatch::report::json_for_script(data);
  if (text.find('<') != std::string::npos || text.find('>') != std::string::npos)
    __builtin_trap();
  auto back = Json::parse(text, nullptr, false);
  if (back.is_discarded() || back != data) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leakwatch;
  const auto text = fuzz::as_text(data, size);
  const std::string escaped = report::escape_html(text);
  if (escaped.find_first_of("<>\"'") != std::string::npos) __builtin_trap();

  auto j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  check_embedded(j);
  // A small budget so that the omitted-stacks path runs too.
  check_embedded(report::html_growth_data(j, 4096));
  check_embedded(report::html_report_data(j, 4096));
  return 0;
}
