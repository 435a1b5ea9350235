#include "metrics/system_collector.h"

#include <unistd.h>

#include "metrics/process_collector.h"
#include "metrics/proc_read.h"

namespace leakwatch::metrics {

Result<SystemSample> collect_system(const std::string& proc_root) {
  std::string buf;
  SystemSample s;
  s.t_s = monotonic_seconds();
  auto text = read_proc_file(proc_root + "/meminfo", buf);
  if (!text) return std::unexpected(text.error());
  auto mi = parse_meminfo(*text);
  if (!mi) return std::unexpected(mi.error());
  s.meminfo = *mi;
  text = read_proc_file(proc_root + "/pressure/memory", buf);
  if (text) {
    auto psi = parse_psi(*text);
    if (!psi) return std::unexpected(psi.error());
    s.pressure = *psi;
  }
  return s;
}

Result<CgroupSample> collect_cgroup(const std::string& dir, const std::string& root) {
  std::string buf;
  CgroupSample s;
  s.dir = dir;
  s.t_s = monotonic_seconds();

  auto text = read_proc_file(dir + "/memory.current", buf);
  if (!text) {
    if (text.error().errnum == ENOENT && ::access(dir.c_str(), F_OK) == 0)
      return fail("cgroup {}: no memory.current (not cgroup v2, or the memory controller is "
                  "not enabled for it)", dir);
    return std::unexpected(text.error());
  }
  auto cur = parse_u64_file(*text);
  if (!cur) return fail("{}/memory.current: {}", dir, cur.error().message);
  s.current = *cur;

  text = read_proc_file(dir + "/memory.stat", buf);
  if (!text) return std::unexpected(text.error());
  auto stat = parse_cgroup_memory_stat(*text);
  if (!stat) return fail("{}: {}", dir, stat.error().message);
  s.anon = stat->anon;
  s.file = stat->file;

  text = read_proc_file(dir + "/memory.events", buf);
  if (!text) return std::unexpected(text.error());
  auto events = parse_cgroup_memory_events(*text);
  if (!events) return fail("{}: {}", dir, events.error().message);
  s.events = *events;

  if (auto t = read_proc_file(dir + "/memory.swap.current", buf)) {
    if (auto v = parse_u64_file(*t)) s.swap = *v;
  }
  if (auto t = read_proc_file(dir + "/memory.pressure", buf)) {
    if (auto p = parse_psi(*t)) s.pressure = *p;
  }

  // memory.max of this cgroup and every ancestor below the root (the root has none).
  std::string d = dir;
  while (d.size() > root.size() && d.starts_with(root)) {
    auto t = read_proc_file(d + "/memory.max", buf);
    if (t) {
      auto lim = parse_cgroup_limit(*t);
      if (!lim) return fail("{}/memory.max: {}", d, lim.error().message);
      if (d == dir) s.max = *lim;
      if (*lim && (!s.effective_max || **lim < *s.effective_max)) s.effective_max = *lim;
    }
    size_t slash = d.rfind('/');
    if (slash == std::string::npos) break;
    d.resize(slash);
  }
  return s;
}

Result<std::vector<int>> cgroup_pids(const std::string& dir) {
  std::string buf;
  auto text = read_proc_file(dir + "/cgroup.procs", buf);
  if (!text) return std::unexpected(text.error());
  std::vector<int> pids;
  std::string_view t = *text;
  while (!t.empty()) {
    size_t nl = t.find('\n');
    auto v = parse_u64_file(t.substr(0, nl));
    if (v) pids.push_back(static_cast<int>(*v));
    if (nl == std::string_view::npos) break;
    t.remove_prefix(nl + 1);
  }
  return pids;
}

Result<std::string> cgroup2_mount(const std::string& proc_root) {
  std::string buf;
  auto text = read_proc_file(proc_root + "/self/mountinfo", buf);
  if (!text) return std::unexpected(text.error());
  return find_cgroup2_mount(*text);
}

Result<std::string> process_cgroup_dir(int pid, const std::string& cgroup_root,
                                       const std::string& proc_root) {
  std::string buf;
  auto text = read_proc_file(proc_root + "/" + std::to_string(pid) + "/cgroup", buf);
  if (!text) return std::unexpected(text.error());
  auto path = parse_cgroup_v2_path(*text);
  if (!path) return fail("pid {}: {}", pid, path.error().message);
  if (*path == "/") return cgroup_root;
  return cgroup_root + *path;
}

Result<SelfUsage> self_usage() {
  std::string buf;
  auto text = read_proc_file("/proc/self/stat", buf);
  if (!text) return std::unexpected(text.error());
  auto stat = parse_proc_stat(*text);
  if (!stat) return std::unexpected(stat.error());
  SelfUsage u;
  u.cpu_seconds =
      static_cast<double>(stat->utime_ticks + stat->stime_ticks) / clock_ticks_per_second();
  u.vsz_bytes = stat->vsize;
  u.rss_bytes = stat->rss_pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return u;
}

}  // namespace leakwatch::metrics
