#include "metrics/process_table.h"

#include <algorithm>

#include "metrics/proc_parse.h"
#include "metrics/proc_read.h"

namespace leakwatch::metrics {

const char* to_string(Layer1Source s) {
  switch (s) {
    case Layer1Source::kAuto: return "auto";
    case Layer1Source::kIterator: return "bpf";
    case Layer1Source::kProc: return "proc";
  }
  return "auto";
}

bool in_initial_pid_namespace() {
  std::string buf;
  auto text = read_proc_file("/proc/self/status", buf);
  if (!text) return false;
  size_t at = text->find("\nNSpid:");
  if (at == std::string_view::npos) return true;  // kernels before 4.1 have no NSpid line
  std::string_view line = text->substr(at + 7);
  line = line.substr(0, line.find('\n'));
  int numbers = 0;
  bool in_number = false;
  for (char c : line) {
    bool digit = c >= '0' && c <= '9';
    if (digit && !in_number) ++numbers;
    in_number = digit;
  }
  return numbers == 1;
}

ProcessTable::ProcessTable(ProcessTableOptions options)
    : options_(std::move(options)),
      collector_(options_.proc_root, false),
      cgroup_paths_(options_.cgroup_root) {}

Result<std::unique_ptr<ProcessTable>> ProcessTable::create(ProcessTableOptions options) {
  std::unique_ptr<ProcessTable> t(new ProcessTable(std::move(options)));
  const Layer1Source want = t->options_.source;
  if (want == Layer1Source::kProc) {
    t->fallback_reason_ = "configured";
    return t;
  }
  std::string why;
  if (!in_initial_pid_namespace()) {
    why = "the agent is not in the initial pid namespace";
  } else {
    TaskIterOptions o;
    o.btf_path = t->options_.btf_path;
    o.rss_figure = t->options_.rss_figure;
    o.proc_root = t->options_.proc_root;
    auto it = TaskIterator::Create(o);
    if (it) t->iter_ = std::move(*it);
    else why = it.error().message;
  }
  if (!t->iter_) {
    if (want == Layer1Source::kIterator) return fail("layer 1 from the task iterator: {}", why);
    t->fallback_reason_ = why;
  }
  return t;
}

const TaskEntry* ProcessTable::scanned(int pid) const {
  if (!scanned_) return nullptr;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), pid,
                             [](const TaskEntry& e, int p) { return e.sample.pid < p; });
  return it != entries_.end() && it->sample.pid == pid ? &*it : nullptr;
}

const std::string* ProcessTable::comm(int pid) const {
  if (const TaskEntry* e = scanned(pid)) return &e->sample.comm;
  auto it = comms_.find(pid);
  return it == comms_.end() ? nullptr : &it->second;
}

void ProcessTable::list_from_proc() {
  pids_ = list_pids(options_.proc_root).value_or(std::vector<int>{});
  std::sort(pids_.begin(), pids_.end());
  std::erase_if(proc_cgroups_, [&](const auto& kv) {
    return !std::binary_search(pids_.begin(), pids_.end(), kv.first);
  });
  comms_.clear();
  std::string path;
  for (int pid : pids_) {
    path = options_.proc_root + "/" + std::to_string(pid) + "/comm";
    auto text = read_proc_file(path, buf_);
    if (!text) continue;
    std::string_view name = *text;
    if (name.ends_with('\n')) name.remove_suffix(1);
    comms_.emplace(pid, std::string(name));
  }
}

void ProcessTable::find_unvisited() {
  // Every pid /proc lists that the scan did not return is a kernel thread, a zombie, one
  // that started or ended in between, or one the iterator does not visit.  Kernel threads
  // are children of kthreadd (pid 2), which a user process can never be.
  auto listed = list_pids(options_.proc_root);
  if (!listed) return;
  std::set<int> next;
  std::map<int, uint64_t> kthreads;
  for (int pid : *listed) {
    if (scanned(pid)) continue;
    if (auto k = kernel_threads_.find(pid); k != kernel_threads_.end()) {
      kthreads.insert(*k);  // kernel threads are not looked at again
      continue;
    }
    auto text = read_proc_file(options_.proc_root + "/" + std::to_string(pid) + "/stat", buf_);
    if (!text) continue;
    auto st = parse_proc_stat(*text);
    if (!st) continue;
    if (pid == 2 || st->ppid == 2) {
      kthreads.emplace(pid, st->start_time_ticks);
      continue;
    }
    next.insert(pid);
  }
  kernel_threads_ = std::move(kthreads);
  unvisited_ = std::move(next);
}

void ProcessTable::refresh(bool list) {
  const double t0 = thread_cpu_seconds();
  scanned_ = false;
  if (!list) {
    last_refresh_cpu_s_ = thread_cpu_seconds() - t0;
    return;
  }
  if (!iter_) {
    list_from_proc();
    last_refresh_cpu_s_ = thread_cpu_seconds() - t0;
    return;
  }
  const double now = monotonic_seconds();
  if (auto r = iter_->scan(entries_); !r) {
    // A failed scan (should not happen once attached) leaves this sample to /proc.
    list_from_proc();
    last_refresh_cpu_s_ = thread_cpu_seconds() - t0;
    return;
  }
  scanned_ = true;
  for (TaskEntry& e : entries_) e.sample.t_s = now;
  if (now - last_list_s_ >= options_.proc_list_every_s) {
    last_list_s_ = now;
    find_unvisited();
  }
  pids_.clear();
  pids_.reserve(entries_.size() + unvisited_.size());
  for (const TaskEntry& e : entries_) pids_.push_back(e.sample.pid);
  comms_.clear();
  for (auto it = unvisited_.begin(); it != unvisited_.end();) {
    const int pid = *it;
    if (scanned(pid)) {  // visited after all (it was starting up)
      it = unvisited_.erase(it);
      continue;
    }
    auto text = read_proc_file(options_.proc_root + "/" + std::to_string(pid) + "/comm", buf_);
    if (!text) {  // gone
      it = unvisited_.erase(it);
      continue;
    }
    std::string_view name = *text;
    if (name.ends_with('\n')) name.remove_suffix(1);
    comms_.emplace(pid, std::string(name));
    pids_.push_back(pid);
    ++it;
  }
  std::sort(pids_.begin(), pids_.end());
  last_refresh_cpu_s_ = thread_cpu_seconds() - t0;
}

Result<ProcessSample> ProcessTable::sample(int pid) {
  if (const TaskEntry* e = scanned(pid)) return e->sample;
  return collector_.collect(pid, false);
}

std::optional<std::string> ProcessTable::cgroup_path(int pid) {
  if (const TaskEntry* e = scanned(pid); e && e->cgroup_id != 0)
    if (auto p = cgroup_paths_.path(e->cgroup_id)) return p;
  if (auto it = proc_cgroups_.find(pid); it != proc_cgroups_.end()) return it->second;
  auto text = read_proc_file(options_.proc_root + "/" + std::to_string(pid) + "/cgroup", buf_);
  if (!text) return std::nullopt;
  auto p = parse_cgroup_v2_path(*text);
  if (!p) return std::nullopt;
  if (proc_cgroups_.size() > 100000) proc_cgroups_.clear();
  proc_cgroups_.emplace(pid, *p);
  return *p;
}

uint64_t ProcessTable::cgroup_id(int pid) const {
  const TaskEntry* e = scanned(pid);
  return e ? e->cgroup_id : 0;
}

}  // namespace leakwatch::metrics
