#include "report/render.h"

#include "report/folded_writer.h"
#include "report/html_writer.h"
#include "report/json_writer.h"
#include "report/pprof_writer.h"

namespace leakwatch::report {

std::optional<Format> parse_format(std::string_view name) {
  for (Format f : {Format::kText, Format::kJson, Format::kPprof, Format::kFolded, Format::kHtml})
    if (name == to_string(f)) return f;
  return std::nullopt;
}

const char* to_string(Format format) {
  switch (format) {
    case Format::kJson: return "json";
    case Format::kPprof: return "pprof";
    case Format::kFolded: return "folded";
    case Format::kHtml: return "html";
    case Format::kText: break;
  }
  return "text";
}

Result<std::string> render(const Report& report, Format format, const TextOptions& options) {
  switch (format) {
    case Format::kJson: return write_json(report);
    case Format::kPprof: return write_pprof(report);
    case Format::kFolded: return write_folded(report);
    case Format::kHtml: return write_html(report);
    case Format::kText: break;
  }
  return write_bcc_text(report, options);
}

}  // namespace leakwatch::report
