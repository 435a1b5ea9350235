#include "report/folded_writer.h"

#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "report/frame_format.h"

namespace leakwatch::report {

namespace {

std::string folded_name(const Frame& f) {
  std::string name = frame_label(f);
  for (char& c : name) {
    if (c == ';') c = ':';
    else if (c == '\n' || c == '\r') c = ' ';
  }
  return name;
}

}  // namespace

std::string write_folded(const Report& report) {
  std::vector<std::pair<std::string, int64_t>> lines;  // first-seen order: stable output
  std::unordered_map<std::string, size_t> index;
  for (const StackReport& s : report.stacks) {
    int64_t bytes = round_to_i64(s.bytes.estimate);
    if (bytes <= 0) continue;
    std::string path = s.truncated ? "[truncated]" : "";
    // The model lists frames innermost first; folded stacks start at the root.
    for (auto it = s.frames.rbegin(); it != s.frames.rend(); ++it) {
      if (!path.empty()) path += ';';
      path += folded_name(*it);
    }
    if (path.empty()) path = "[no stack]";
    auto [pos, inserted] = index.emplace(path, lines.size());
    if (inserted) lines.emplace_back(path, bytes);
    else lines[pos->second].second += bytes;
  }
  std::string out;
  for (const auto& [path, bytes] : lines) out += fmt::format("{} {}\n", path, bytes);
  return out;
}

}  // namespace leakwatch::report
