#include "agent/agent.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/log.h"
#include "agent/sink_profiles.h"
#include "metrics/container_identity.h"
#include "metrics/proc_read.h"
#include "report/finding.h"

namespace leakwatch::agent {

std::string node_name_for(const AgentConfig& config) {
  if (!config.node_name.empty()) return config.node_name;
  if (const char* env = std::getenv("NODE_NAME"); env && *env) return env;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0]) return host;
  return "unknown";
}

struct Agent::ProcessState {
  explicit ProcessState(const DetectionParams& p) : detector(p) {}
  metrics::ProcessSample last;
  std::optional<metrics::ProcessRates> rates;
  GrowthDetector detector;
  Evaluation eval;
  LimitContext limit;
  std::string cgroup_dir;
  std::vector<TriggerReason> active;
  bool seen = false;
  // smaps_rollup cadence: the samples to skip before the next read, and the last figures.
  int smaps_wait = 0;
  bool have_smaps = false;
  bool smaps_banned = false;  // a read cost more than smaps_max_cost: never again
  uint64_t pss = 0, uss = 0;
  WorkloadLabels workload;
  // Shared with the investigation of this process, which stores it with its reports.
  std::shared_ptr<MemoryTrail> trail = std::make_shared<MemoryTrail>();
};

struct Agent::CgroupState {
  explicit CgroupState(const DetectionParams& p) : detector(p) {}
  std::optional<metrics::CgroupSample> last;
  GrowthDetector detector;
  Evaluation eval;
  LimitContext limit;
  std::vector<TriggerReason> active;
};

struct Agent::TargetState {
  TargetSpec spec;
  std::map<int, std::unique_ptr<ProcessState>> processes;  // by pid, one instance each
  std::unique_ptr<CgroupState> cgroup;                     // cgroup targets
  std::string problem;
  bool investigating = false;
};

struct Agent::Running {
  std::thread thread;
  std::atomic<bool> done{false};
  std::string target;
  std::pair<int, uint64_t> instance;
};

namespace {

// A pid or cgroup target that cannot be watched is a configuration error, reported at
// start (and on reload) rather than discovered in a status line.
Result<void> validate_targets(const AgentConfig& c, const std::string& proc_root,
                              const std::string& cgroup_root) {
  for (const TargetSpec& t : c.targets) {
    if (t.kind == TargetSpec::Kind::kPid) {
      metrics::ProcessCollector probe(proc_root, false);
      auto s = probe.collect(t.pid);
      if (!s) {
        if (metrics::is_gone(s.error()))
          return fail("target {} (line {}): no such process", t.label(), t.line);
        return fail("target {} (line {}): {}", t.label(), t.line, s.error().message);
      }
      if (s->kernel_thread)
        return fail("target {} (line {}): a kernel thread has no memory to watch", t.label(),
                    t.line);
    } else if (t.kind == TargetSpec::Kind::kCgroup) {
      if (cgroup_root.empty())
        return fail("target {} (line {}): this host has no cgroup v2 filesystem", t.label(),
                    t.line);
      auto s = metrics::collect_cgroup(t.cgroup, cgroup_root);
      if (!s) return fail("target {} (line {}): {}", t.label(), t.line, s.error().message);
    }
  }
  return {};
}

std::string describe(const std::vector<TriggerReason>& why, const Evaluation& e,
                     const TriggerConditions& c) {
  std::string out;
  for (TriggerReason r : why) {
    if (!out.empty()) out += "; ";
    switch (r) {
      case TriggerReason::kGrowthRate:
        out += fmt::format("memory_growth_rate {} for {} (threshold {})",
                           format_rate(e.growth_rate), format_duration(e.above_threshold_for_s),
                           format_rate(c.memory_growth_rate->value));
        break;
      case TriggerReason::kRssIncrease:
        out += fmt::format("rss_increase_threshold +{} since growth began {} ago (threshold {})",
                           format_bytes(e.increase_bytes), format_duration(e.above_for_s),
                           format_bytes(c.rss_increase_threshold->value));
        break;
      case TriggerReason::kOomRisk:
        out += fmt::format("oom_risk_score {:.2f} (threshold {:.2f}{})", e.oom_risk,
                           c.oom_risk_score->value,
                           e.time_to_limit_s
                               ? ", limit in " + format_duration(*e.time_to_limit_s)
                               : std::string());
        break;
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Agent>> Agent::create(AgentConfig config, AgentOptions options) {
  std::string cgroup_root = options.cgroup_root.empty()
                                ? metrics::cgroup2_mount(options.proc_root).value_or("")
                                : options.cgroup_root;
  if (auto v = validate_targets(config, options.proc_root, cgroup_root); !v)
    return std::unexpected(v.error());
  auto store = ReportStore::open(config.reports_dir, config.reports);
  if (!store) return std::unexpected(store.error());
  metrics::ProcessTableOptions to;
  to.proc_root = options.proc_root;
  to.cgroup_root = cgroup_root;
  to.source = config.detection.source;
  auto table = metrics::ProcessTable::create(to);
  if (!table) return std::unexpected(table.error());
  std::shared_ptr<sink::Sinks> sinks;
  if (!config.sinks.empty()) {
    auto s = sink::Sinks::create(config.sinks);
    if (!s) return std::unexpected(s.error());
    sinks = std::move(*s);
  }
  std::unique_ptr<Agent> agent(
      new Agent(std::move(config), std::move(options), std::move(*store)));
  agent->sinks_ = std::move(sinks);
  agent->cgroup_root_ = std::move(cgroup_root);
  agent->table_ = std::move(*table);
  agent->layer1_.source = agent->table_->uses_iterator() ? "bpf" : "proc";
  agent->layer1_.fallback_reason = agent->table_->fallback_reason();
  if (const metrics::TaskIterator* it = agent->table_->iterator()) {
    agent->layer1_.rss_figure = it->rss_figure() == metrics::RssFigure::kSum ? "sum" : "count";
    log::info("agent: layer 1 from the BPF task iterator (RSS as the per-CPU counters' {}: {})",
              agent->layer1_.rss_figure, it->figure_reason());
  } else {
    log::info("agent: layer 1 from /proc ({})", agent->layer1_.fallback_reason);
  }
  return agent;
}

Agent::Agent(AgentConfig config, AgentOptions options, std::shared_ptr<ReportStore> store)
    : config_(std::move(config)),
      params_(DetectionParams::from(config_.detection, config_.memleak_sampling.trigger_conditions)),
      options_(std::move(options)),
      store_(std::move(store)),
      collector_(options_.proc_root, false),
      kube_(config_.kubernetes, node_name_for(config_)),
      node_name_(node_name_for(config_)),
      agent_start_s_(metrics::monotonic_seconds()) {
  build_targets(config_.targets);
  // Every configured target and condition has its counters from the first scrape on.
  for (const TargetSpec& t : config_.targets)
    for (TriggerReason r :
         {TriggerReason::kGrowthRate, TriggerReason::kRssIncrease, TriggerReason::kOomRisk})
      counters_.triggers[{t.label(), to_string(r)}] = 0;
}

Agent::~Agent() { shutdown(); }

void Agent::build_targets(const std::vector<TargetSpec>& specs) {
  std::vector<std::unique_ptr<TargetState>> next;
  for (const TargetSpec& spec : specs) {
    auto same = std::find_if(targets_.begin(), targets_.end(), [&](const auto& t) {
      return t && t->spec.label() == spec.label();
    });
    if (same != targets_.end()) {
      next.push_back(std::move(*same));  // keeps its processes' histories
    } else {
      next.push_back(std::make_unique<TargetState>());
      if (spec.kind == TargetSpec::Kind::kCgroup)
        next.back()->cgroup = std::make_unique<CgroupState>(params_);
    }
    next.back()->spec = spec;
  }
  targets_ = std::move(next);
}

void Agent::count_error(const std::string& kind) {
  std::lock_guard lock(mu_);
  counters_.collection_errors[kind]++;
}

LimitContext Agent::limit_for(const std::string& cgroup_dir) {
  LimitContext lim;
  if (!cgroup_dir.empty() && cgroup_dir != cgroup_root_) {
    auto it = cgroup_cache_.find(cgroup_dir);
    if (it == cgroup_cache_.end()) {
      auto s = metrics::collect_cgroup(cgroup_dir, cgroup_root_);
      it = cgroup_cache_.emplace(cgroup_dir, s ? std::optional(*s) : std::nullopt).first;
    }
    if (it->second && it->second->effective_max) {
      // Page cache is reclaimed before an OOM: only the rest counts towards the limit.
      const auto& cg = *it->second;
      lim.usage = static_cast<double>(cg.current > cg.file ? cg.current - cg.file : 0);
      lim.limit = static_cast<double>(*cg.effective_max);
      lim.from_cgroup = true;
      return lim;
    }
  }
  if (system_) {
    lim.usage = static_cast<double>(system_->meminfo.total - system_->meminfo.available);
    lim.limit = static_cast<double>(system_->meminfo.total);
  }
  return lim;
}

std::vector<int> Agent::resolve(TargetState& t,
                                const std::map<std::string, std::vector<int>>& by_comm,
                                const std::vector<int>& all_pids) {
  t.problem.clear();
  switch (t.spec.kind) {
    case TargetSpec::Kind::kComm: {
      auto it = by_comm.find(t.spec.comm.substr(0, 15));
      if (it == by_comm.end() || it->second.empty()) {
        t.problem = fmt::format("no process named {}", t.spec.comm);
        return {};
      }
      return it->second;
    }
    case TargetSpec::Kind::kPid:
      return {t.spec.pid};
    case TargetSpec::Kind::kCgroup: {
      auto pids = metrics::cgroup_pids(t.spec.cgroup);
      if (!pids) {
        t.problem = pids.error().message;
        return {};
      }
      return *pids;
    }
    case TargetSpec::Kind::kAll:
      return all_pids;
    case TargetSpec::Kind::kPod:
    case TargetSpec::Kind::kNamespace:
    case TargetSpec::Kind::kSelector:
      return resolve_kubernetes(t, all_pids);
  }
  return {};
}

const WorkloadLabels& Agent::workload_of(int pid) {
  static const WorkloadLabels kNone;
  // Cached by cgroup: every process of a container shares its identity, and the cgroup id
  // (iterator) or path (/proc) changes only if the process moves.
  const uint64_t id = table_->cgroup_id(pid);
  if (id != 0)
    if (auto it = workload_by_id_.find(id); it != workload_by_id_.end()) return it->second;
  auto path = table_->cgroup_path(pid);
  if (!path) return kNone;
  auto it = workload_by_path_.find(*path);
  if (it == workload_by_path_.end()) {
    if (workload_by_path_.size() > 65536) workload_by_path_.clear();
    it = workload_by_path_.emplace(*path, kube_.identify(metrics::parse_container_identity(*path)))
             .first;
  }
  if (id != 0) {
    if (workload_by_id_.size() > 65536) workload_by_id_.clear();
    workload_by_id_.emplace(id, it->second);
  }
  return it->second;
}

std::vector<int> Agent::resolve_kubernetes(TargetState& t, const std::vector<int>& all_pids) {
  const TargetSpec& spec = t.spec;
  if (spec.kind == TargetSpec::Kind::kNamespace && !kube_.have_names()) {
    t.problem = fmt::format("namespace names unknown: {}/pods is not readable (kubernetes.log_dir)",
                            config_.kubernetes.log_dir);
    return {};
  }
  if (spec.kind == TargetSpec::Kind::kSelector && !kube_.have_labels()) {
    t.problem = "pod labels unknown: set kubernetes.pod_manifests" +
                (kube_.problem().empty() ? std::string() : " (" + kube_.problem() + ")");
    return {};
  }
  std::string want_ns, want_pod = spec.pod;
  if (size_t slash = spec.pod.find('/'); slash != std::string::npos) {
    want_ns = spec.pod.substr(0, slash);
    want_pod = spec.pod.substr(slash + 1);
  }
  std::vector<int> out;
  for (int pid : all_pids) {
    const WorkloadLabels& w = workload_of(pid);
    if (w.pod_uid.empty()) continue;
    bool match = false;
    switch (spec.kind) {
      case TargetSpec::Kind::kPod:
        match = (want_pod == w.pod || want_pod == w.pod_uid) &&
                (want_ns.empty() || want_ns == w.k8s_namespace);
        break;
      case TargetSpec::Kind::kNamespace:
        match = w.k8s_namespace == spec.k8s_namespace;
        break;
      case TargetSpec::Kind::kSelector: {
        const PodInfo* info = kube_.find(w.pod_uid);
        match = info && info->labels_known && spec.selector.matches(info->labels);
        break;
      }
      default:
        break;
    }
    if (match) out.push_back(pid);
  }
  if (out.empty()) t.problem = fmt::format("no process in a pod matching {}", spec.label());
  return out;
}

bool Agent::wants_smaps(const TargetState& t, const ProcessState* p) const {
  const DetectionConfig& d = config_.detection;
  if (d.read_smaps == DetectionConfig::Smaps::kOff) return false;
  if (d.read_smaps == DetectionConfig::Smaps::kSuspects) {
    // A suspect: named by pid, growing above its baseline, a trigger condition holding, or
    // being investigated.
    const bool suspect = t.spec.kind == TargetSpec::Kind::kPid || t.investigating ||
                         (p && (p->eval.above || !p->active.empty()));
    if (!suspect) return false;
  }
  return true;
}

void Agent::watch_process(TargetState& t, const std::string& label, int pid,
                          std::vector<WatchedView>& out) {
  auto s = table_->sample(pid);
  if (!s) {
    if (!metrics::is_gone(s.error())) {
      count_error(s.error().errnum == EACCES || s.error().errnum == EPERM ? "permission"
                                                                          : "parse");
      log::debug("agent: {}", s.error().message);
    }
    return;
  }
  if (s->kernel_thread) return;
  auto& slot = t.processes[pid];
  if (slot && slot->last.start_time_ticks != s->start_time_ticks) slot.reset();  // restarted
  if (!slot) {
    slot = std::make_unique<ProcessState>(params_);
    if (!cgroup_root_.empty())
      if (auto path = table_->cgroup_path(pid))
        slot->cgroup_dir = *path == "/" ? cgroup_root_ : cgroup_root_ + *path;
  } else {
    slot->rates = metrics::rates_between(slot->last, *s);
  }
  ProcessState& p = *slot;
  p.workload = workload_of(pid);

  // PSS/USS: smaps_rollup walks the page tables under the target's mmap lock (~10-20 ms of
  // CPU for 1 GiB of 4 KiB pages here, hundreds of ms reported for tens of GiB), so only
  // for suspects, never above smaps_max_rss, never again for a process whose read cost more
  // than smaps_max_cost; a costly one is repeated less often, keeping its average near the
  // budget.  PSS and USS in between are the last ones read.
  const DetectionConfig& d = config_.detection;
  const bool allowed = wants_smaps(t, &p);
  if (allowed && !p.smaps_banned && p.smaps_wait <= 0) {
    if (static_cast<double>(s->rss) > d.smaps_max_rss) {
      std::lock_guard lock(mu_);
      counters_.smaps_skipped++;
    } else if (auto r = collector_.add_smaps(*s); !r) {
      return;  // gone
    } else if (s->detailed) {
      std::lock_guard lock(mu_);
      counters_.smaps_reads++;
    }
  }
  if (s->detailed) {
    const int period = static_cast<int>(
        std::clamp(std::ceil(s->smaps_seconds / options_.smaps_budget_s), 1.0, 60.0));
    p.smaps_wait = period - 1;
    p.have_smaps = true;
    p.pss = s->pss;
    p.uss = s->uss;
    if (s->smaps_seconds > d.smaps_max_cost_s) {
      p.smaps_banned = true;
      log::info("agent: pid {} ({}): smaps_rollup cost {} of CPU (smaps_max_cost {}): not read "
                "again", pid, s->comm, format_duration(s->smaps_seconds),
                format_duration(d.smaps_max_cost_s));
    }
  } else if (p.have_smaps && allowed) {
    if (p.smaps_wait > 0) --p.smaps_wait;
    s->pss = p.pss;
    s->uss = p.uss;
    s->detailed = true;
  }
  p.last = *s;
  p.seen = true;
  p.trail->add(unix_ms_now(), static_cast<double>(s->anon + s->swap), static_cast<double>(s->rss));

  const double start_boot_s =
      static_cast<double>(s->start_time_ticks) / metrics::clock_ticks_per_second();
  const double age_s = boot_seconds() - start_boot_s;
  p.limit = limit_for(p.cgroup_dir);
  std::vector<TriggerReason> fired;
  if (age_s >= config_.detection.warmup_grace_s) {
    MemoryPoint mp{s->t_s, static_cast<double>(s->anon + s->swap), static_cast<double>(s->file),
                   static_cast<double>(s->rss), static_cast<double>(s->vsz)};
    p.eval = p.detector.add(mp, p.limit);
    fired = check_triggers(p.eval, config_.memleak_sampling.trigger_conditions, params_);
  }
  consider(t, &p, p.eval, p.active, fired);

  WatchedView& v = out.emplace_back();
  v.target = label;
  v.pid = pid;
  v.comm = s->comm;
  v.start_time_unix_s = unix_seconds() - age_s;
  v.sample = std::move(*s);
  v.workload = p.workload;
  v.rates = p.rates;
  v.eval = p.eval;
  v.limit = p.limit;
}

void Agent::consider(TargetState& t, ProcessState* p, const Evaluation& e,
                     std::vector<TriggerReason>& active, const std::vector<TriggerReason>& fired) {
  {
    std::lock_guard lock(mu_);
    for (TriggerReason r : fired)
      if (std::find(active.begin(), active.end(), r) == active.end())
        counters_.triggers[{t.spec.label(), to_string(r)}]++;  // rising edges only
  }
  active = fired;
  if (!fired.empty() && p) start_investigation(t, *p, fired, e);
}

void Agent::start_investigation(TargetState& t, ProcessState& p,
                                const std::vector<TriggerReason>& why, const Evaluation& e) {
  const MemleakSampling& ms = config_.memleak_sampling;
  if (!ms.enabled || t.investigating || stop_) return;
  if (running_.size() >= static_cast<size_t>(ms.max_concurrent)) return;
  if (p.last.pid == ::getpid()) return;  // never trace the agent itself
  const std::pair<int, uint64_t> instance{p.last.pid, p.last.start_time_ticks};
  const double now = metrics::monotonic_seconds();
  if (auto it = cooldown_until_.find(instance); it != cooldown_until_.end() && now < it->second)
    return;

  InvestigationRequest req;
  req.pid = p.last.pid;
  req.comm = p.last.comm;
  req.cgroup = t.spec.kind == TargetSpec::Kind::kCgroup ? t.spec.cgroup : "";
  req.target = t.spec.label();
  const bool urgent = std::find(why.begin(), why.end(), TriggerReason::kOomRisk) != why.end();
  req.sampling = urgent ? ms.sampling_config.aggressive_sampling
                        : ms.sampling_config.default_sampling;
  req.duration_s = config_.investigation_duration_s();
  req.overhead_budget_percent = config_.overhead_budget_percent;
  req.inject = to_string(ms.sampling_config.inject);
  req.reason = describe(why, e, ms.trigger_conditions);
  req.workload = p.workload;
  // At the default level, as the finding is: an SRE reading the log sees when probes go
  // onto a production process and why, not minutes of silence.
  log::warn("agent: investigating pid {} ({}) for up to {} (growth step {}): {}", req.pid,
            req.comm, format_duration(req.duration_s), format_duration(config_.growth_step_s()),
            req.reason);

  auto run = std::make_unique<Running>();
  run->target = req.target;
  run->instance = instance;
  Running* r = run.get();
  t.investigating = true;
  {
    std::lock_guard lock(mu_);
    ++running_count_;
  }
  // The thread owns copies of everything it uses except the Agent's counters (mu_) and
  // stop_, which outlive it: shutdown() joins every thread before the Agent goes away.
  r->thread = std::thread([this, r, req, growth_s = config_.growth_step_s(),
                           factory = options_.investigator, growth_factory = options_.growth,
                           store = store_, sinks = sinks_, node = node_name_, trail = p.trail,
                           trigger_ms = unix_ms_now()] {
    InvestigationRecord rec = run_investigation(req, growth_s, growth_factory, factory, stop_);
    rec.memory = trail->series(trigger_ms);
    bool stored = false, store_failed = false;
    if (rec.memleak || (rec.growth && rec.growth->result)) {
      if (auto s = store->store(rec); s) {
        stored = true;
        log::info("agent: report {} stored ({}, {} stacks{})", s->id, rec.end, s->stacks,
                  s->growth ? fmt::format(", growth step {} stacks", s->growth->stacks) : "");
        // The finding is the investigation's product: shown at the default log level.
        if (s->finding)
          log::warn("agent: finding of pid {} ({}): {}; {}", req.pid, req.target,
                    report::describe_finding(*s->finding), s->finding->reason);
        else
          log::warn("agent: finding of pid {} ({}): none (no outstanding allocations and no "
                    "growth were seen)", req.pid, req.target);
        // To the profile stores, on the sinks' own threads (queued, never waited for).
        if (sinks)
          for (const sink::Profile& p : investigation_profiles(*s, store->dir(), rec, node))
            sinks->submit(p);
      } else {
        store_failed = true;
        log::error("agent: report of pid {} not stored: {}", req.pid, s.error().message);
      }
    }
    {
      std::lock_guard lock(mu_);
      counters_.investigations[{req.target, rec.end}]++;
      if (rec.growth) counters_.growth_steps[{req.target, rec.growth->outcome}]++;
      if (rec.memleak)
        for (auto& [name, n] : rec.memleak->report.lost) counters_.lost[name] += n;
      if (rec.growth && rec.growth->result)
        for (auto& [name, n] : rec.growth->result->report.lost)
          counters_.lost["growth_" + name] += n;
      counters_.reports_stored += stored ? 1 : 0;
      counters_.report_errors += store_failed ? 1 : 0;
      --running_count_;
    }
    r->done = true;
  });
  running_.push_back(std::move(run));
}

void Agent::reap_finished() {
  const double now = metrics::monotonic_seconds();
  for (auto it = running_.begin(); it != running_.end();) {
    if (!(*it)->done) {
      ++it;
      continue;
    }
    if ((*it)->thread.joinable()) (*it)->thread.join();
    cooldown_until_[(*it)->instance] = now + config_.memleak_sampling.cooldown_s;
    for (auto& t : targets_)
      if (t->spec.label() == (*it)->target) t->investigating = false;
    it = running_.erase(it);
  }
  // Forget cooldowns long past (instances that are gone stay forgotten).
  std::erase_if(cooldown_until_, [&](const auto& kv) { return kv.second < now; });
}

void Agent::tick() {
  const double t0 = metrics::monotonic_seconds();
  const double cpu0 = metrics::thread_cpu_seconds();
  reap_finished();
  cgroup_cache_.clear();
  if (auto s = metrics::collect_system(options_.proc_root)) {
    system_ = *s;
  } else {
    count_error("system");
    log::warn("agent: {}", s.error().message);
  }

  // One refresh of the process table (one task-iterator read, or one /proc listing)
  // serves every comm, "all" and Kubernetes target.
  bool need_comm = false, need_all = false, need_kube = false;
  for (auto& t : targets_) {
    need_comm |= t->spec.kind == TargetSpec::Kind::kComm;
    need_all |= t->spec.kind == TargetSpec::Kind::kAll;
    need_kube |= t->spec.is_kubernetes();
  }
  {  // pod names and labels (a directory listing at most every kubernetes.refresh)
    const size_t pods_before = kube_.pods();
    const bool had_names = kube_.have_names(), had_labels = kube_.have_labels();
    kube_.refresh(t0);
    if (kube_.pods() != pods_before || kube_.have_names() != had_names ||
        kube_.have_labels() != had_labels) {
      workload_by_id_.clear();
      workload_by_path_.clear();
    }
  }
  table_->refresh(need_comm || need_all || need_kube);
  const std::vector<int>& all_pids = table_->pids();
  std::map<std::string, std::vector<int>> by_comm;
  if (need_comm)
    for (int pid : all_pids)
      if (const std::string* c = table_->comm(pid)) by_comm[*c].push_back(pid);

  std::vector<WatchedView> watched = std::move(spare_watched_);
  watched.clear();
  watched.reserve(all_pids.size() + targets_.size());
  std::vector<TargetView> views;
  for (auto& tp : targets_) {
    TargetState& t = *tp;
    for (auto& [pid, p] : t.processes) p->seen = false;
    std::vector<int> pids = resolve(t, by_comm, all_pids);
    const size_t first_view = watched.size();
    const std::string label = t.spec.label();
    for (int pid : pids) watch_process(t, label, pid, watched);
    std::erase_if(t.processes, [](const auto& kv) { return !kv.second->seen; });
    if (t.spec.kind == TargetSpec::Kind::kPid && t.processes.empty())
      t.problem = fmt::format("pid {} has exited", t.spec.pid);

    if (t.cgroup) {
      CgroupState& cg = *t.cgroup;
      auto s = metrics::collect_cgroup(t.spec.cgroup, cgroup_root_);
      std::vector<TriggerReason> fired;
      if (s) {
        cg.last = *s;
        cg.limit.usage = static_cast<double>(s->current > s->file ? s->current - s->file : 0);
        cg.limit.from_cgroup = s->effective_max.has_value();
        cg.limit.limit = s->effective_max ? static_cast<double>(*s->effective_max)
                         : system_ ? static_cast<double>(system_->meminfo.total) : 0;
        MemoryPoint mp{s->t_s, static_cast<double>(s->anon + s->swap),
                       static_cast<double>(s->file), static_cast<double>(s->current), 0};
        cg.eval = cg.detector.add(mp, cg.limit);
        fired = check_triggers(cg.eval, config_.memleak_sampling.trigger_conditions, params_);
      } else {
        cg.last.reset();
        t.problem = s.error().message;
        count_error("cgroup");
      }
      // The suspect is the member growing fastest (largest anonymous memory if none has
      // a rate yet).
      ProcessState* suspect = nullptr;
      for (auto& [pid, p] : t.processes) {
        if (!suspect) { suspect = p.get(); continue; }
        const bool better =
            p->eval.ready && suspect->eval.ready
                ? p->eval.growth_rate > suspect->eval.growth_rate
                : (p->eval.ready && !suspect->eval.ready) ||
                      (p->eval.ready == suspect->eval.ready && p->last.anon > suspect->last.anon);
        if (better) suspect = p.get();
      }
      consider(t, suspect, cg.eval, cg.active, fired);
      if (cg.last) {
        WatchedView v;
        v.target = t.spec.label();
        v.is_cgroup = true;
        v.cgroup = cg.last;
        v.eval = cg.eval;
        v.limit = cg.limit;
        watched.insert(watched.begin() + static_cast<long>(first_view), std::move(v));
      }
    }
    for (size_t i = first_view; i < watched.size(); ++i)
      watched[i].investigating = t.investigating;
    views.push_back({t.spec.label(), t.spec.line, t.problem, t.processes.size(), t.investigating});
  }

  std::lock_guard lock(mu_);
  layer1_.processes = table_->pids().size();
  layer1_.unvisited = table_->unvisited();
  counters_.last_layer1_cpu_s = table_->last_refresh_cpu_s();
  counters_.last_tick_cpu_s = metrics::thread_cpu_seconds() - cpu0;
  snapshot_.t_s = t0;
  snapshot_.environment = to_string(config_.environment);
  snapshot_.system = system_;
  snapshot_.targets = std::move(views);
  std::swap(snapshot_.watched, watched);
  spare_watched_ = std::move(watched);
  counters_.ticks++;
  counters_.last_tick_s = metrics::monotonic_seconds() - t0;
}

Result<void> Agent::reload(AgentConfig config) {
  if (auto v = validate_targets(config, options_.proc_root, cgroup_root_); !v)
    return std::unexpected(v.error());
  // New sinks are checked before anything changes: a bad one keeps the running config.
  const std::vector<SinkConfig> old_sinks = config_.sinks;
  Result<std::unique_ptr<sink::Sinks>> new_sinks = std::unique_ptr<sink::Sinks>();
  if (config.sinks != old_sinks && !config.sinks.empty()) {
    new_sinks = sink::Sinks::create(config.sinks);
    if (!new_sinks) return std::unexpected(new_sinks.error());
  }
  if (config.reports_dir != config_.reports_dir) {
    auto store = ReportStore::open(config.reports_dir, config.reports);
    if (!store) return std::unexpected(store.error());
    std::lock_guard lock(mu_);
    store_ = std::move(*store);  // running investigations keep the old one alive
  } else {
    store_->set_retention(config.reports);
  }
  config_ = std::move(config);
  params_ = DetectionParams::from(config_.detection, config_.memleak_sampling.trigger_conditions);
  if (config_.detection.source != table_->configured_source()) {
    metrics::ProcessTableOptions to;
    to.proc_root = options_.proc_root;
    to.cgroup_root = cgroup_root_;
    to.source = config_.detection.source;
    if (auto table = metrics::ProcessTable::create(to)) table_ = std::move(*table);
    else log::warn("agent: {} (layer 1 unchanged)", table.error().message);
    std::lock_guard lock(mu_);
    layer1_.source = table_->uses_iterator() ? "bpf" : "proc";
    layer1_.fallback_reason = table_->fallback_reason();
  }
  node_name_ = node_name_for(config_);
  kube_ = KubePods(config_.kubernetes, node_name_);
  if (config_.sinks != old_sinks) {
    std::shared_ptr<sink::Sinks> next;
    if (!config_.sinks.empty()) next = std::move(*new_sinks);
    std::lock_guard lock(mu_);
    sinks_ = std::move(next);  // running investigations keep the old ones alive
  }
  workload_by_id_.clear();
  workload_by_path_.clear();
  build_targets(config_.targets);
  for (auto& t : targets_) {
    for (auto& [pid, p] : t->processes) p->detector.set_params(params_);
    if (t->cgroup) t->cgroup->detector.set_params(params_);
  }
  std::lock_guard lock(mu_);
  for (const TargetSpec& t : config_.targets)
    for (TriggerReason r :
         {TriggerReason::kGrowthRate, TriggerReason::kRssIncrease, TriggerReason::kOomRisk})
      counters_.triggers.try_emplace({t.label(), to_string(r)}, 0);
  return {};
}

void Agent::shutdown() {
  stop_ = true;
  for (auto& r : running_)
    if (r->thread.joinable()) r->thread.join();
  for (auto& r : running_) r->done = true;
  reap_finished();
  // The last investigations' profiles get a few seconds to reach the stores.
  std::shared_ptr<sink::Sinks> sinks;
  {
    std::lock_guard lock(mu_);
    sinks = sinks_;
  }
  if (sinks && !sinks->wait_idle(5))
    log::warn("agent: profile sinks still busy at shutdown: what is queued is dropped");
}

std::string Agent::reports_json() const { return report_store()->index_json(); }

std::shared_ptr<const ReportStore> Agent::report_store() const {
  std::lock_guard lock(mu_);
  return store_;
}

Snapshot Agent::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

AgentCounters Agent::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

Layer1Info Agent::layer1() const {
  std::lock_guard lock(mu_);
  return layer1_;
}

std::vector<sink::SinkStats> Agent::sink_stats() const {
  std::shared_ptr<sink::Sinks> sinks;
  {
    std::lock_guard lock(mu_);
    sinks = sinks_;
  }
  return sinks ? sinks->stats() : std::vector<sink::SinkStats>{};
}

size_t Agent::running_investigations() const {
  std::lock_guard lock(mu_);
  return running_count_;
}

bool Agent::wait_idle(double timeout_s) const {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (running_investigations() > 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace leakwatch::agent
