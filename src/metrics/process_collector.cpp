#include "metrics/process_collector.h"

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <memory>

#include "metrics/proc_parse.h"
#include "metrics/proc_read.h"

namespace leakwatch::metrics {

double clock_ticks_per_second() {
  static const double ticks = [] {
    long t = ::sysconf(_SC_CLK_TCK);
    return t > 0 ? static_cast<double>(t) : 100.0;
  }();
  return ticks;
}

ProcessCollector::ProcessCollector(std::string proc_root, bool read_smaps)
    : proc_root_(std::move(proc_root)), read_smaps_(read_smaps) {}

Result<ProcessSample> ProcessCollector::collect(int pid, bool with_smaps) {
  ProcessSample s;
  s.pid = pid;
  s.t_s = monotonic_seconds();
  const std::string dir = proc_root_ + "/" + std::to_string(pid) + "/";

  // stat first: it fixes the instance (start time) the other files are attributed to.
  path_ = dir + "stat";
  auto text = read_proc_file(path_, buf_);
  if (!text) return std::unexpected(text.error());
  auto stat = parse_proc_stat(*text);
  if (!stat) return fail("pid {}: {}", pid, stat.error().message);
  s.comm = stat->comm;
  s.start_time_ticks = stat->start_time_ticks;
  s.minflt = stat->minflt;
  s.majflt = stat->majflt;
  s.cpu_ticks = stat->utime_ticks + stat->stime_ticks;
  s.vsz = stat->vsize;
  s.threads = stat->num_threads;

  path_ = dir + "status";
  text = read_proc_file(path_, buf_);
  if (!text) return std::unexpected(text.error());
  auto status = parse_proc_status(*text);
  if (!status) return fail("pid {}: {}", pid, status.error().message);
  if (!status->has_mm) {
    s.kernel_thread = true;
    return s;
  }
  s.rss = status->vm_rss;
  s.anon = status->rss_anon;
  s.file = status->rss_file;
  s.shmem = status->rss_shmem;
  s.swap = status->vm_swap;

  if (with_smaps) {
    // CPU time, not wall time: the cost to the machine, whatever else competes for it.
    const double t0 = thread_cpu_seconds();
    path_ = dir + "smaps_rollup";
    text = read_proc_file(path_, buf_);
    s.smaps_seconds = thread_cpu_seconds() - t0;
    if (!text) {
      // A process that exits between two reads makes this ESRCH; a refused read (another
      // user's process without CAP_SYS_PTRACE) keeps the status figures.
      if (is_gone(text.error())) return std::unexpected(text.error());
      return s;
    }
    auto rollup = parse_smaps_rollup(*text);
    if (!rollup) return s;  // the address space went away between status and smaps_rollup
    s.detailed = true;
    s.pss = rollup->pss;
    s.uss = rollup->uss();
  }
  return s;
}

std::optional<ProcessRates> rates_between(const ProcessSample& prev, const ProcessSample& cur) {
  if (prev.pid != cur.pid || prev.start_time_ticks != cur.start_time_ticks) return std::nullopt;
  double dt = cur.t_s - prev.t_s;
  if (dt <= 0) return std::nullopt;
  auto delta = [](uint64_t a, uint64_t b) { return b >= a ? static_cast<double>(b - a) : 0.0; };
  ProcessRates r;
  r.minflt_per_s = delta(prev.minflt, cur.minflt) / dt;
  r.majflt_per_s = delta(prev.majflt, cur.majflt) / dt;
  r.cpu_percent = 100.0 * delta(prev.cpu_ticks, cur.cpu_ticks) / clock_ticks_per_second() / dt;
  return r;
}

Result<std::vector<int>> list_pids(const std::string& proc_root) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(proc_root.c_str()), ::closedir);
  if (!d) return fail_errno("cannot list " + proc_root);
  std::vector<int> pids;
  while (dirent* e = ::readdir(d.get())) {
    int pid = 0;
    const char* end = e->d_name + std::char_traits<char>::length(e->d_name);
    auto [p, ec] = std::from_chars(e->d_name, end, pid);
    if (ec == std::errc() && p == end && pid > 0) pids.push_back(pid);
  }
  return pids;
}

Result<std::vector<int>> find_pids_by_comm(std::string_view comm, const std::string& proc_root) {
  constexpr size_t kTaskCommLen = 15;  // TASK_COMM_LEN - 1
  std::string_view want = comm.substr(0, kTaskCommLen);
  auto pids = list_pids(proc_root);
  if (!pids) return pids;
  std::vector<int> out;
  std::string buf, path;
  for (int pid : *pids) {
    path = proc_root + "/" + std::to_string(pid) + "/comm";
    auto text = read_proc_file(path, buf);
    if (!text) continue;  // exited meanwhile
    std::string_view name = *text;
    if (name.ends_with('\n')) name.remove_suffix(1);
    if (name == want) out.push_back(pid);
  }
  return out;
}

}  // namespace leakwatch::metrics
