// The HTML report's script and style sheet, bundled from web/src at build time (web/build.mjs)
// and compiled into the binary (web/embed.cmake), so that a report is one file that loads
// nothing from the network.
#pragma once

#include <string_view>

namespace leakwatch::report::web {

std::string_view app_js();       // minified; contains no "</script" or "<!--"
std::string_view app_css();      // contains no "</style"
std::string_view app_js_hash();  // "sha256-<base64>" of app_js(), for Content-Security-Policy

}  // namespace leakwatch::report::web
