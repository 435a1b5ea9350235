#include "report/html.h"

#include <fmt/format.h>

#include "report/web_assets.h"

namespace leakwatch::report {

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string json_for_script(const nlohmann::ordered_json& data) {
  const std::string text =
      data.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size() + 64);
  // Outside strings JSON has none of these characters, so escaping every occurrence only
  // changes how string contents are spelled.
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else if (c == '\xE2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
             (text[i + 2] == '\xA8' || text[i + 2] == '\xA9')) {
      out += text[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string content_security_policy() {
  return fmt::format(
      "default-src 'none'; script-src '{}'; style-src 'unsafe-inline'; img-src data:; "
      "base-uri 'none'; form-action 'none'",
      web::app_js_hash());
}

std::string html_document(std::string_view title, std::string_view body_html,
                          const nlohmann::ordered_json* data) {
  std::string out;
  out.reserve(web::app_js().size() + web::app_css().size() + body_html.size() + 4096);
  out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  out += "<meta http-equiv=\"Content-Security-Policy\" content=\"" +
         escape_html(content_security_policy()) + "\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<meta name=\"referrer\" content=\"no-referrer\">\n";
  out += "<title>" + escape_html(title) + "</title>\n<style>";
  out += web::app_css();
  out += "</style></head>\n<body>\n<header class=\"top\"><span class=\"brand\">leakwatch</span><h1>" +
         escape_html(title) + "</h1></header>\n<main id=\"app\">";
  out += body_html;
  out += "</main>\n<footer>Drawn with d3-flame-graph (Apache-2.0), d3 (ISC) and uPlot (MIT); "
         "this page loads nothing from the network.</footer>\n";
  if (data) {
    out += "<script type=\"application/json\" id=\"lw-data\">" + json_for_script(*data) +
           "</script>\n<script>";
    out += web::app_js();
    out += "</script>\n";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace leakwatch::report
