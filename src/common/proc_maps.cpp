#include "common/proc_maps.h"

#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

namespace leakwatch {
namespace {

std::string_view next_field(std::string_view& line) {
  size_t b = line.find_first_not_of(' ');
  if (b == std::string_view::npos) {
    line = {};
    return {};
  }
  line.remove_prefix(b);
  size_t e = line.find(' ');
  std::string_view f = line.substr(0, e);
  line.remove_prefix(e == std::string_view::npos ? line.size() : e);
  return f;
}

uint64_t hex(std::string_view s) {
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v, 16);
  return v;
}

}  // namespace

std::vector<MapEntry> parse_proc_maps(std::string_view text) {
  std::vector<MapEntry> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::string_view range = next_field(line);
    std::string_view perms = next_field(line);
    std::string_view off = next_field(line);
    next_field(line);  // dev
    std::string_view ino = next_field(line);
    size_t dash = range.find('-');
    if (dash == std::string_view::npos || perms.empty()) continue;
    MapEntry e;
    e.start = hex(range.substr(0, dash));
    e.end = hex(range.substr(dash + 1));
    e.perms = std::string(perms);
    e.offset = hex(off);
    std::from_chars(ino.data(), ino.data() + ino.size(), e.inode);
    size_t b = line.find_first_not_of(' ');
    if (b != std::string_view::npos) e.path = std::string(line.substr(b));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<MapEntry>> read_proc_maps(int pid) {
  std::string path = fmt::format("/proc/{}/maps", pid);
  std::ifstream in(path);
  if (!in) return fail_errno("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_proc_maps(ss.str());
}

std::string target_path(int pid, const std::string& path) {
  if (pid > 0) {
    std::string p = fmt::format("/proc/{}/root{}", pid, path);
    struct stat st;
    if (::stat(p.c_str(), &st) == 0) return p;
  }
  return path;
}

bool process_exists(int pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string s;
  std::getline(in, s);
  size_t rp = s.rfind(')');
  if (rp == std::string::npos || rp + 2 >= s.size()) return false;
  return s[rp + 2] != 'Z' && s[rp + 2] != 'X';
}

std::string process_comm(int pid) {
  std::ifstream in(fmt::format("/proc/{}/comm", pid));
  std::string s;
  std::getline(in, s);
  return s;
}

std::optional<uint64_t> process_rss_bytes(int pid) {
  // statm: size resident shared text lib data dt, in pages.
  std::ifstream in(fmt::format("/proc/{}/statm", pid));
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return std::nullopt;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace leakwatch
