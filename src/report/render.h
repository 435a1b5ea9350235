// The one entry point the CLI needs: a Report in the format the user asked for.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "report/model.h"
#include "report/text_writer.h"

namespace leakwatch::report {

enum class Format { kText, kJson, kPprof, kFolded, kHtml };

// "text" | "json" | "pprof" | "folded" | "html"; nullopt for anything else.
std::optional<Format> parse_format(std::string_view name);
const char* to_string(Format format);

// The rendered report: text, JSON, folded and HTML (html_writer.h) are UTF-8 text, pprof
// is binary (gzipped protobuf).  text_options is used only for kText.  Pure function; thread-safe.
[[nodiscard]] Result<std::string> render(const Report& report, Format format,
                                         const TextOptions& text_options);

}  // namespace leakwatch::report
