#include "common/procfs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <optional>

#include <fmt/format.h>

#include "common/fd.h"

namespace leakwatch {
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
bool parse_line(std::string_view s, MapEntry& e) {
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

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> to_u64(std::string_view s) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace


bool MapEntry::deleted() const { return path.ends_with(kDeletedSuffix); }

std::string MapEntry::file_path() const {
  if (!deleted()) return path;
  return path.substr(0, path.size() - kDeletedSuffix.size());
}

Result<std::vector<MapEntry>> parse_proc_maps(std::string_view text) {
  std::vector<MapEntry> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty()) continue;
    MapEntry e;
    if (!parse_line(line, e)) return fail("malformed maps line {}: '{}'", line_no, line);
    out.push_back(std::move(e));
  }
  return out;
}

Result<ProcStat> parse_proc_stat(std::string_view text) {
  // comm is between the first '(' and the LAST ')': it may itself contain ") (".
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return fail("stat: no (comm) field");
  ProcStat s;
  auto pid = to_u64(trim(text.substr(0, open)));
  if (!pid) return fail("stat: bad pid field");
  s.pid = static_cast<int>(*pid);
  s.comm = std::string(text.substr(open + 1, close - open - 1));

  // Fields from (3) on, space separated.
  std::vector<std::string_view> f;
  f.reserve(52);
  std::string_view rest = trim(text.substr(close + 1));
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    f.push_back(rest.substr(0, sp));
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  // f[0] is field (3); field (n) is f[n - 3].
  if (f.size() < 22) return fail("stat: {} fields after comm, expected at least 22", f.size());
  auto field = [&](int n) { return to_u64(f[static_cast<size_t>(n - 3)]); };
  s.state = f[0].empty() ? '?' : f[0][0];
  auto ppid = field(4), minflt = field(10), majflt = field(12), utime = field(14),
       stime = field(15), threads = field(20), start = field(22), vsize = field(23),
       rss = field(24);
  if (!ppid || !minflt || !majflt || !utime || !stime || !threads || !start || !vsize || !rss)
    return fail("stat: non-numeric field in '{}'", trim(text));
  s.ppid = static_cast<int>(*ppid);
  s.minflt = *minflt;
  s.majflt = *majflt;
  s.utime_ticks = *utime;
  s.stime_ticks = *stime;
  s.num_threads = static_cast<int>(*threads);
  s.start_time_ticks = *start;
  s.vsize = *vsize;
  s.rss_pages = *rss;
  return s;
}

Result<std::vector<MapEntry>> read_proc_maps(int pid) {
  auto text = read_proc_file(fmt::format("/proc/{}/maps", pid));
  if (!text) return std::unexpected(text.error());
  return parse_proc_maps(*text);
}

Result<std::string_view> read_proc_file(const std::string& path, std::string& buf) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return fail_errno("cannot open " + path);
  if (buf.size() < 4096) buf.resize(4096);
  size_t used = 0;
  for (;;) {
    if (used == buf.size()) buf.resize(buf.size() * 2);
    ssize_t n = ::read(fd.get(), buf.data() + used, buf.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("cannot read " + path);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  return std::string_view(buf.data(), used);
}

Result<std::string> read_proc_file(const std::string& path) {
  std::string buf;
  auto view = read_proc_file(path, buf);
  if (!view) return std::unexpected(view.error());
  buf.resize(view->size());
  return buf;
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

std::string status_field(std::string_view status_text, std::string_view key) {
  size_t pos = 0;
  while (pos < status_text.size()) {
    size_t end = status_text.find('\n', pos);
    if (end == std::string_view::npos) end = status_text.size();
    std::string_view line = status_text.substr(pos, end - pos);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ':') {
      line.remove_prefix(key.size() + 1);
      size_t first = line.find_first_not_of(" \t");
      return first == std::string_view::npos ? std::string() : std::string(line.substr(first));
    }
    pos = end + 1;
  }
  return {};
}

std::string process_status_field(int pid, std::string_view key) {
  auto text = read_proc_file(fmt::format("/proc/{}/status", pid));
  return text ? status_field(*text, key) : std::string();
}

std::optional<uint64_t> process_rss_bytes(int pid) {
  // statm: size resident shared text lib data dt, in pages.
  std::ifstream in(fmt::format("/proc/{}/statm", pid));
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return std::nullopt;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

Result<std::optional<std::vector<MapEntry>>> read_instance_maps(int pid,
                                                                uint64_t start_time_ticks) {
  const std::string proc = fmt::format("/proc/{}", pid);
  auto gone = [](const Error& e) { return e.errnum == ENOENT || e.errnum == ESRCH; };
  auto text = read_proc_file(proc + "/maps");
  if (!text) {
    if (gone(text.error())) return std::nullopt;
    return std::unexpected(text.error());
  }
  auto stat_text = read_proc_file(proc + "/stat");
  if (!stat_text) {
    if (gone(stat_text.error())) return std::nullopt;
    return std::unexpected(stat_text.error());
  }
  auto st = parse_proc_stat(*stat_text);
  if (!st) return std::unexpected(st.error());
  if (st->start_time_ticks != start_time_ticks || st->state == 'Z' || st->state == 'X')
    return std::nullopt;
  auto entries = parse_proc_maps(*text);
  if (!entries) return std::unexpected(entries.error());
  return std::optional(std::move(*entries));
}

}  // namespace leakwatch
