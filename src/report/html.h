// The frame of leakwatch's HTML pages (reports and the agent's pages), and the escaping of
// untrusted text in it.  Function names, file names, comm and cgroup paths come from the
// traced program: they are attacker-controlled text and never reach a page unescaped.
//
//   <!DOCTYPE html> ... <meta Content-Security-Policy: scripts by hash only, no network>
//   <title>escaped</title> <style>app.css</style>
//   <main id="app">body</main>
//   <script type="application/json" id="lw-data">data, escaped for a script element</script>
//   <script>app.js</script>          (only when there is data to draw)
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace leakwatch::report {

// Text for an HTML text node or a quoted attribute value: & < > " ' escaped.
std::string escape_html(std::string_view text);

// JSON for a <script type="application/json"> element: '<', '>', '&', U+2028 and U+2029
// written as \uXXXX escapes (valid JSON, the same value), so no "</script>" or "<!--" in a
// string can end or change the element.  Invalid UTF-8 is replaced.
std::string json_for_script(const nlohmann::ordered_json& data);

// The policy every page carries (as a <meta> element, and as a header on the agent): the
// embedded script only (by its hash), inline styles, no connection, image, font, frame or
// form target anywhere.
std::string content_security_policy();

// A whole page.  `body_html` is trusted markup (built with escape_html); `data`, when not
// null, is embedded and drawn by the report script.
std::string html_document(std::string_view title, std::string_view body_html,
                          const nlohmann::ordered_json* data);

}  // namespace leakwatch::report
