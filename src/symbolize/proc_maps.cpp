#include "symbolize/proc_maps.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>

#include "common/fd.h"

namespace leakwatch::symbolize {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

// Consumes a number in `base` from the front of `s`.
bool take_number(std::string_view& s, int base, uint64_t& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  if (ec != std::errc() || ptr == s.data()) return false;
  s.remove_prefix(static_cast<size_t>(ptr - s.data()));
  return true;
}

bool take_char(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

void skip_spaces(std::string_view& s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

// "start-end perms offset maj:min inode [path]"
bool parse_line(std::string_view s, MapsEntry& e) {
  uint64_t maj = 0, min = 0;
  if (!take_number(s, 16, e.start) || !take_char(s, '-') || !take_number(s, 16, e.end)) {
    return false;
  }
  skip_spaces(s);
  if (s.size() < 4) return false;
  e.readable = s[0] == 'r';
  e.writable = s[1] == 'w';
  e.executable = s[2] == 'x';
  e.shared = s[3] == 's';
  s.remove_prefix(4);
  skip_spaces(s);
  if (!take_number(s, 16, e.offset)) return false;
  skip_spaces(s);
  if (!take_number(s, 16, maj) || !take_char(s, ':') || !take_number(s, 16, min)) return false;
  e.dev_major = static_cast<uint32_t>(maj);
  e.dev_minor = static_cast<uint32_t>(min);
  skip_spaces(s);
  if (!take_number(s, 10, e.inode)) return false;
  skip_spaces(s);
  e.path = std::string(s);  // the rest of the line, spaces included
  return e.start <= e.end;
}

}  // namespace

bool MapsEntry::deleted() const { return path.ends_with(kDeletedSuffix); }

std::string MapsEntry::file_path() const {
  if (!deleted()) return path;
  return path.substr(0, path.size() - kDeletedSuffix.size());
}

Result<std::vector<MapsEntry>> parse_proc_maps(std::string_view text) {
  std::vector<MapsEntry> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty()) continue;
    MapsEntry e;
    if (!parse_line(line, e)) return fail("malformed maps line {}: '{}'", line_no, line);
    out.push_back(std::move(e));
  }
  return out;
}

Result<ProcStat> parse_proc_stat(std::string_view text) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields are
  // counted from the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return fail("malformed stat: no ')'");
  std::string_view s = text.substr(close + 1);
  ProcStat st;
  // Field 3 is the state; field 22 is starttime.
  for (int field = 3; field <= 22; ++field) {
    skip_spaces(s);
    size_t end = s.find(' ');
    std::string_view tok = s.substr(0, end);
    if (tok.empty()) return fail("malformed stat: field {} missing", field);
    if (field == 3) st.state = tok.front();
    if (field == 22 && !take_number(tok, 10, st.start_time)) {
      return fail("malformed stat: bad starttime '{}'", tok);
    }
    s.remove_prefix(end == std::string_view::npos ? s.size() : end);
  }
  return st;
}

Result<std::string> read_proc_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno("cannot open " + path);
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("cannot read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace leakwatch::symbolize
