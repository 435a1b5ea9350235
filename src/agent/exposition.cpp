#include "agent/exposition.h"

#include <cmath>

#include <fmt/format.h>

namespace leakwatch::agent {

std::string Exposition::escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string Exposition::format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void Exposition::add(const std::string& name, Type type, const std::string& help,
                     const Labels& labels, double value) {
  auto [it, inserted] = families_.try_emplace(name, Family{type, help, {}});
  if (inserted) order_.push_back(name);
  std::string line = name;
  if (!labels.empty()) {
    line += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) line += ',';
      line += labels[i].first + "=\"" + escape_label_value(labels[i].second) + '"';
    }
    line += '}';
  }
  line += ' ';
  line += format_value(value);
  it->second.lines.push_back(std::move(line));
}

std::string Exposition::text() const {
  std::string out;
  for (const std::string& name : order_) {
    const Family& f = families_.at(name);
    std::string help;
    for (char c : f.help) help += c == '\n' ? std::string("\\n") : c == '\\' ? "\\\\" : std::string(1, c);
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                       f.type == Type::kCounter ? "counter" : "gauge");
    for (const std::string& l : f.lines) out += l + '\n';
  }
  return out;
}

}  // namespace leakwatch::agent
