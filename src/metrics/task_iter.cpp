#include "metrics/task_iter.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "bpf/task_iter.h"
#include "common/fd.h"
#include "metrics/proc_parse.h"
#include "metrics/proc_read.h"
#include "task_iter.skel.h"

namespace leakwatch::metrics {
namespace {

static_assert(sizeof(lw_ti_process) == 144);
static_assert(sizeof(lw_ti_thread) == 32);
static_assert(LW_TI_FILEPAGES == 0 && LW_TI_ANONPAGES == 1 && LW_TI_SWAPENTS == 2 &&
              LW_TI_SHMEMPAGES == 3);

// libbpf prints its own diagnostics to stderr; a failed load here is an expected fallback
// (the caller says why in one line), so they are kept quiet.
int quiet_print(enum libbpf_print_level, const char*, va_list) { return 0; }

uint64_t positive_bytes(int64_t pages, uint64_t page_size) {
  return pages > 0 ? static_cast<uint64_t>(pages) * page_size : 0;
}

}  // namespace

RssFigure proc_status_figure(const std::string& kernel_release) {
  int major = 0, minor = 0;
  if (std::sscanf(kernel_release.c_str(), "%d.%d", &major, &minor) != 2) return RssFigure::kSum;
  return (major > 6 || (major == 6 && minor >= 16)) ? RssFigure::kSum : RssFigure::kCount;
}

std::optional<RssFigure> figure_shown_by_proc(const std::vector<TaskEntry>& entries,
                                              uint64_t page_size, const std::string& proc_root) {
  int sum_votes = 0, count_votes = 0, asked = 0;
  std::string buf;
  for (const TaskEntry& e : entries) {
    if (e.pages_sum == e.pages_count) continue;
    if (++asked > 32) break;
    auto text = read_proc_file(proc_root + "/" + std::to_string(e.sample.pid) + "/status", buf);
    if (!text) continue;
    auto st = parse_proc_status(*text);
    if (!st || !st->has_mm) continue;
    const std::pair<int, uint64_t> shown[] = {{LW_TI_ANONPAGES, st->rss_anon},
                                              {LW_TI_FILEPAGES, st->rss_file},
                                              {LW_TI_SHMEMPAGES, st->rss_shmem},
                                              {LW_TI_SWAPENTS, st->vm_swap}};
    for (auto [m, bytes] : shown) {
      const size_t i = static_cast<size_t>(m);
      if (e.pages_sum[i] == e.pages_count[i]) continue;
      if (bytes == positive_bytes(e.pages_sum[i], page_size)) ++sum_votes;
      else if (bytes == positive_bytes(e.pages_count[i], page_size)) ++count_votes;
    }
  }
  // The process may have changed between the scan and the read: a clear majority decides.
  if (sum_votes >= 2 && sum_votes > 2 * count_votes) return RssFigure::kSum;
  if (count_votes >= 2 && count_votes > 2 * sum_votes) return RssFigure::kCount;
  return std::nullopt;
}

Result<void> parse_task_records(const char* data, size_t size, uint64_t page_size,
                                RssFigure figure, std::vector<TaskEntry>& out,
                                TaskScanStats& stats) {
  out.clear();
  stats = TaskScanStats{};
  stats.bytes = size;
  // USER_HZ divides 10^9 (100 on every Linux architecture that matters here).
  const uint64_t ns_per_tick = static_cast<uint64_t>(1e9 / clock_ticks_per_second());
  // Thread records are folded in after the walk: a thread can have a lower pid than its
  // leader (after pid wrap-around or an exec by a non-leader thread).
  struct ThreadSum {
    uint64_t min_flt = 0, maj_flt = 0, cpu_ns = 0;
  };
  std::unordered_map<uint32_t, ThreadSum> threads;
  std::vector<uint64_t> cpu_ns;  // per entry, converted to ticks at the end
  size_t off = 0;
  while (off < size) {
    if (size - off < sizeof(uint32_t)) return fail("task iterator: truncated record at {}", off);
    uint32_t kind;
    std::memcpy(&kind, data + off, sizeof kind);
    if (kind == LW_TI_KIND_THREAD) {
      if (size - off < sizeof(lw_ti_thread))
        return fail("task iterator: truncated thread record at {}", off);
      lw_ti_thread t;
      std::memcpy(&t, data + off, sizeof t);
      off += sizeof t;
      ThreadSum& s = threads[t.tgid];
      s.min_flt += t.min_flt;
      s.maj_flt += t.maj_flt;
      s.cpu_ns += t.cpu_ns;
      stats.threads++;
      continue;
    }
    if (kind != LW_TI_KIND_PROCESS) return fail("task iterator: unknown record kind {}", kind);
    if (size - off < sizeof(lw_ti_process))
      return fail("task iterator: truncated process record at {}", off);
    lw_ti_process p;
    std::memcpy(&p, data + off, sizeof p);
    off += sizeof p;

    TaskEntry e;
    ProcessSample& s = e.sample;
    s.pid = static_cast<int>(p.tgid);
    s.comm.assign(p.comm, strnlen(p.comm, sizeof p.comm));
    // /proc/PID/stat's start time is nsec_to_clock_t(start_boottime): the same division.
    s.start_time_ticks = p.start_boottime_ns / ns_per_tick;
    const __s64* pages = figure == RssFigure::kCount ? p.pages_count : p.pages_sum;
    s.file = positive_bytes(pages[LW_TI_FILEPAGES], page_size);
    s.anon = positive_bytes(pages[LW_TI_ANONPAGES], page_size);
    s.shmem = positive_bytes(pages[LW_TI_SHMEMPAGES], page_size);
    s.swap = positive_bytes(pages[LW_TI_SWAPENTS], page_size);
    s.rss = s.file + s.anon + s.shmem;
    s.vsz = p.total_vm * page_size;
    s.minflt = p.min_flt;
    s.majflt = p.maj_flt;
    s.threads = static_cast<int>(p.nr_threads);
    e.ppid = static_cast<int>(p.ppid);
    e.cgroup_id = p.cgroup_id;
    e.start_boottime_ns = p.start_boottime_ns;
    std::copy(p.pages_sum, p.pages_sum + 4, e.pages_sum.begin());
    std::copy(p.pages_count, p.pages_count + 4, e.pages_count.begin());
    cpu_ns.push_back(p.cpu_ns);
    out.push_back(std::move(e));
  }
  stats.processes = out.size();
  for (size_t i = 0; i < out.size(); ++i) {
    ProcessSample& s = out[i].sample;
    uint64_t ns = cpu_ns[i];
    if (auto it = threads.find(static_cast<uint32_t>(s.pid)); it != threads.end()) {
      s.minflt += it->second.min_flt;
      s.majflt += it->second.maj_flt;
      ns += it->second.cpu_ns;
      threads.erase(it);
    }
    s.cpu_ticks = ns / ns_per_tick;
  }
  stats.orphan_threads = threads.size();
  // The kernel walks pids in ascending order: sorting is only needed if that changes.
  auto by_pid = [](const TaskEntry& a, const TaskEntry& b) { return a.sample.pid < b.sample.pid; };
  if (!std::is_sorted(out.begin(), out.end(), by_pid)) std::sort(out.begin(), out.end(), by_pid);
  return {};
}

void TaskIterator::SkelDeleter::operator()(task_iter_bpf* s) const { task_iter_bpf__destroy(s); }

TaskIterator::~TaskIterator() = default;

Result<std::unique_ptr<TaskIterator>> TaskIterator::Create(const TaskIterOptions& options) {
  std::unique_ptr<TaskIterator> it(new TaskIterator());
  long page = ::sysconf(_SC_PAGESIZE);
  it->page_size_ = page > 0 ? static_cast<uint64_t>(page) : 4096;

  const int cpus = libbpf_num_possible_cpus();

  auto previous = libbpf_set_print(quiet_print);
  // The summing program first; a kernel that refuses it (no bpf_loop, no this_cpu_off)
  // still runs the counting one.
  std::string why;
  for (bool sum : {true, false}) {
    if (sum && (cpus <= 0 || cpus > LW_TI_MAX_CPUS)) continue;
    LIBBPF_OPTS(bpf_object_open_opts, open_opts);
    probe::set_btf_path(open_opts, options.btf_path);
    task_iter_bpf* raw = task_iter_bpf__open_opts(&open_opts);
    if (!raw) {
      why = fmt::format("cannot open the task iterator object: {}", std::strerror(errno));
      break;
    }
    it->skel_.reset(raw);
    raw->rodata->nr_cpus = cpus > 0 ? static_cast<uint32_t>(cpus) : 1;
    bpf_program__set_autoload(raw->progs.lw_ti_tasks_sum, sum);
    bpf_program__set_autoload(raw->progs.lw_ti_tasks, !sum);
    if (int err = task_iter_bpf__load(raw); err) {
      why = probe::load_error("the task iterator", err, options.btf_path).message;
      it->skel_.reset();
      continue;
    }
    bpf_program* prog = sum ? raw->progs.lw_ti_tasks_sum : raw->progs.lw_ti_tasks;
    bpf_link* link = bpf_program__attach_iter(prog, nullptr);
    if (!link) {
      why = fmt::format("cannot attach the task iterator: {}", std::strerror(errno));
      it->skel_.reset();
      continue;
    }
    it->link_ = probe::BpfLink(link);
    it->sums_percpu_ = sum;
    break;
  }
  libbpf_set_print(previous);
  if (!it->link_.valid()) return fail("{}", why.empty() ? "task iterator unavailable" : why);

  if (!it->sums_percpu_) {
    it->figure_ = RssFigure::kCount;
    it->figure_reason_ = "count only";
  } else if (options.rss_figure != RssFigure::kAuto) {
    it->figure_ = options.rss_figure;
    it->figure_reason_ = "configured";
  } else {
    std::vector<TaskEntry> entries;
    auto scanned = it->scan(entries);
    if (!scanned) return std::unexpected(scanned.error());
    if (auto shown = figure_shown_by_proc(entries, it->page_size_, options.proc_root)) {
      it->figure_ = *shown;
      it->figure_reason_ = "matches /proc";
    } else {
      utsname u{};
      ::uname(&u);
      it->figure_ = proc_status_figure(u.release);
      it->figure_reason_ = "kernel release";
    }
  }
  return it;
}

Result<void> TaskIterator::scan(std::vector<TaskEntry>& out) {
  UniqueFd fd(bpf_iter_create(link_.fd()));
  if (!fd.valid()) return fail_errno("cannot start a task iteration");
  size_t used = 0;
  if (buf_.size() < (64u << 10)) buf_.resize(64u << 10);
  for (;;) {
    if (buf_.size() - used < (16u << 10)) buf_.resize(buf_.size() * 2);
    ssize_t n = ::read(fd.get(), buf_.data() + used, buf_.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("task iteration read failed");
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  return parse_task_records(buf_.data(), used, page_size_, figure_, out, stats_);
}

}  // namespace leakwatch::metrics
