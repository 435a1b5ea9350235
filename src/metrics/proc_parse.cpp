#include "metrics/proc_parse.h"

#include <charconv>
#include <vector>

namespace leakwatch::metrics {
namespace {

// Calls fn(line) for each line without the trailing newline.
template <typename Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    fn(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' ||
                        s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> to_u64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> to_double(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// "Key:   1234 kB" -> key "Key", value in bytes.  The unit is optional (Threads: 3).
struct KbLine {
  std::string_view key;
  std::optional<uint64_t> value;
};

KbLine split_kb_line(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return {};
  KbLine out{line.substr(0, colon), std::nullopt};
  std::string_view rest = trim(line.substr(colon + 1));
  uint64_t mult = 1;
  if (rest.ends_with(" kB")) {
    rest.remove_suffix(3);
    rest = trim(rest);
    mult = 1024;
  }
  if (auto v = to_u64(rest)) out.value = *v * mult;
  return out;
}

// Fields of "key value" files (memory.stat, memory.events).
template <typename Fn>
Result<void> for_each_key_value(std::string_view text, const char* file, Fn&& fn) {
  Result<void> status;
  for_each_line(text, [&](std::string_view line) {
    if (!status || trim(line).empty()) return;
    size_t sp = line.find(' ');
    auto v = sp == std::string_view::npos ? std::nullopt : to_u64(trim(line.substr(sp + 1)));
    if (!v) {
      status = fail("{}: malformed line '{}'", file, line);
      return;
    }
    fn(line.substr(0, sp), *v);
  });
  return status;
}

// Decodes the octal escapes mountinfo uses for spaces, tabs, newlines and backslashes.
std::string unescape_mount_path(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      std::string_view oct = s.substr(i + 1, 3);
      int v = 0;
      auto [p, ec] = std::from_chars(oct.data(), oct.data() + oct.size(), v, 8);
      if (ec == std::errc() && p == oct.data() + 3) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

Result<SmapsRollup> parse_smaps_rollup(std::string_view text) {
  SmapsRollup r;
  bool have_rss = false, have_pss = false, have_private = false;
  for_each_line(text, [&](std::string_view line) {
    KbLine kv = split_kb_line(line);
    if (!kv.value) return;  // the header line ("...[rollup]") and anything unexpected
    uint64_t v = *kv.value;
    const std::string_view k = kv.key;
    if (k == "Rss") r.rss = v, have_rss = true;
    else if (k == "Pss") r.pss = v, have_pss = true;
    else if (k == "Pss_Anon") r.pss_anon = v;
    else if (k == "Pss_File") r.pss_file = v;
    else if (k == "Pss_Shmem") r.pss_shmem = v;
    else if (k == "Shared_Clean") r.shared_clean = v;
    else if (k == "Shared_Dirty") r.shared_dirty = v;
    else if (k == "Private_Clean") r.private_clean = v, have_private = true;
    else if (k == "Private_Dirty") r.private_dirty = v;
    else if (k == "Anonymous") r.anonymous = v;
    else if (k == "Swap") r.swap = v;
    else if (k == "SwapPss") r.swap_pss = v;
  });
  if (!have_rss || !have_pss || !have_private)
    return fail("smaps_rollup: missing Rss, Pss or Private_Clean (empty for kernel threads)");
  return r;
}

Result<ProcStatus> parse_proc_status(std::string_view text) {
  ProcStatus s;
  bool have_name = false;
  for_each_line(text, [&](std::string_view line) {
    if (line.starts_with("Name:")) {
      s.name = std::string(trim(line.substr(5)));
      have_name = true;
      return;
    }
    KbLine kv = split_kb_line(line);
    if (!kv.value) return;
    uint64_t v = *kv.value;
    const std::string_view k = kv.key;
    if (k == "VmSize") s.vm_size = v, s.has_mm = true;
    else if (k == "VmRSS") s.vm_rss = v;
    else if (k == "RssAnon") s.rss_anon = v;
    else if (k == "RssFile") s.rss_file = v;
    else if (k == "RssShmem") s.rss_shmem = v;
    else if (k == "VmSwap") s.vm_swap = v;
    else if (k == "Threads") s.threads = static_cast<int>(v);
  });
  if (!have_name) return fail("status: no Name line");
  return s;
}

Result<MemInfo> parse_meminfo(std::string_view text) {
  MemInfo m;
  bool have_total = false, have_available = false;
  for_each_line(text, [&](std::string_view line) {
    KbLine kv = split_kb_line(line);
    if (!kv.value) return;
    if (kv.key == "MemTotal") m.total = *kv.value, have_total = true;
    else if (kv.key == "MemFree") m.free = *kv.value;
    else if (kv.key == "MemAvailable") m.available = *kv.value, have_available = true;
    else if (kv.key == "SwapTotal") m.swap_total = *kv.value;
    else if (kv.key == "SwapFree") m.swap_free = *kv.value;
  });
  if (!have_total || !have_available) return fail("meminfo: missing MemTotal or MemAvailable");
  return m;
}

Result<Psi> parse_psi(std::string_view text) {
  Psi psi;
  bool have_some = false;
  Result<void> status;
  for_each_line(text, [&](std::string_view line) {
    line = trim(line);
    if (!status || line.empty()) return;
    size_t sp = line.find(' ');
    std::string_view kind = line.substr(0, sp);
    if (kind != "some" && kind != "full") {
      status = fail("pressure: unexpected line '{}'", line);
      return;
    }
    PsiLine pl;
    int seen = 0;
    std::string_view rest = sp == std::string_view::npos ? "" : line.substr(sp + 1);
    while (!rest.empty()) {
      size_t next = rest.find(' ');
      std::string_view tok = rest.substr(0, next);
      rest = next == std::string_view::npos ? "" : rest.substr(next + 1);
      size_t eq = tok.find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view k = tok.substr(0, eq), v = tok.substr(eq + 1);
      bool ok = true;
      if (k == "total") {
        auto t = to_u64(v);
        ok = t.has_value();
        if (ok) pl.total_us = *t;
      } else {
        auto d = to_double(v);
        ok = d.has_value();
        if (ok && k == "avg10") pl.avg10 = *d;
        else if (ok && k == "avg60") pl.avg60 = *d;
        else if (ok && k == "avg300") pl.avg300 = *d;
        else continue;  // a field added by a later kernel
      }
      if (!ok) {
        status = fail("pressure: bad value in '{}'", tok);
        return;
      }
      ++seen;
    }
    if (seen < 4) {
      status = fail("pressure: expected avg10, avg60, avg300 and total in '{}'", line);
      return;
    }
    if (kind == "some") psi.some = pl, have_some = true;
    else psi.full = pl;
  });
  if (!status) return std::unexpected(status.error());
  if (!have_some) return fail("pressure: no 'some' line");
  return psi;
}

Result<CgroupMemoryStat> parse_cgroup_memory_stat(std::string_view text) {
  CgroupMemoryStat s;
  bool have_anon = false, have_file = false;
  auto r = for_each_key_value(text, "memory.stat", [&](std::string_view k, uint64_t v) {
    if (k == "anon") s.anon = v, have_anon = true;
    else if (k == "file") s.file = v, have_file = true;
    else if (k == "kernel") s.kernel = v;
    else if (k == "shmem") s.shmem = v;
    else if (k == "sock") s.sock = v;
  });
  if (!r) return std::unexpected(r.error());
  if (!have_anon || !have_file) return fail("memory.stat: missing anon or file");
  return s;
}

Result<CgroupMemoryEvents> parse_cgroup_memory_events(std::string_view text) {
  CgroupMemoryEvents e;
  bool have_oom = false;
  auto r = for_each_key_value(text, "memory.events", [&](std::string_view k, uint64_t v) {
    if (k == "low") e.low = v;
    else if (k == "high") e.high = v;
    else if (k == "max") e.max = v;
    else if (k == "oom") e.oom = v, have_oom = true;
    else if (k == "oom_kill") e.oom_kill = v;
    else if (k == "oom_group_kill") e.oom_group_kill = v;
  });
  if (!r) return std::unexpected(r.error());
  if (!have_oom) return fail("memory.events: missing oom");
  return e;
}

Result<uint64_t> parse_u64_file(std::string_view text) {
  auto v = to_u64(trim(text));
  if (!v) return fail("expected a number, got '{}'", trim(text));
  return *v;
}

Result<std::optional<uint64_t>> parse_cgroup_limit(std::string_view text) {
  std::string_view t = trim(text);
  if (t == "max") return std::optional<uint64_t>{};
  auto v = to_u64(t);
  if (!v) return fail("expected a number or 'max', got '{}'", t);
  return std::optional<uint64_t>{*v};
}

Result<std::string> parse_cgroup_v2_path(std::string_view text) {
  std::optional<std::string> path;
  for_each_line(text, [&](std::string_view line) {
    if (line.starts_with("0::")) path = std::string(trim(line.substr(3)));
  });
  if (!path) return fail("cgroup: no cgroup v2 ('0::') entry");
  return *path;
}

Result<std::string> find_cgroup2_mount(std::string_view mountinfo) {
  std::optional<std::string> mount;
  for_each_line(mountinfo, [&](std::string_view line) {
    if (mount) return;
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
    size_t sep = line.find(" - ");
    if (sep == std::string_view::npos) return;
    std::string_view after = line.substr(sep + 3);
    if (!after.starts_with("cgroup2 ")) return;
    std::string_view before = line.substr(0, sep);
    for (int i = 0; i < 4; ++i) {
      size_t sp = before.find(' ');
      if (sp == std::string_view::npos) return;
      before.remove_prefix(sp + 1);
    }
    mount = unescape_mount_path(before.substr(0, before.find(' ')));
  });
  if (!mount) return fail("mountinfo: no cgroup2 filesystem mounted");
  return *mount;
}

}  // namespace leakwatch::metrics
