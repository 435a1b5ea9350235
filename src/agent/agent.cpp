#include "agent/agent.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/log.h"
#include "metrics/proc_read.h"

namespace leakwatch::agent {

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
  uint64_t pss = 0, uss = 0;
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
  std::unique_ptr<Agent> agent(
      new Agent(std::move(config), std::move(options), std::move(*store)));
  agent->cgroup_root_ = std::move(cgroup_root);
  return agent;
}

Agent::Agent(AgentConfig config, AgentOptions options, std::shared_ptr<ReportStore> store)
    : config_(std::move(config)),
      params_(DetectionParams::from(config_.detection, config_.memleak_sampling.trigger_conditions)),
      options_(std::move(options)),
      store_(std::move(store)),
      collector_(options_.proc_root, config_.detection.read_smaps),
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
  }
  return {};
}

void Agent::watch_process(TargetState& t, int pid, std::vector<WatchedView>& out) {
  auto found = t.processes.find(pid);
  const bool want_smaps = config_.detection.read_smaps &&
                          (found == t.processes.end() || found->second->smaps_wait <= 0);
  auto s = collector_.collect(pid, want_smaps);
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
      slot->cgroup_dir = metrics::process_cgroup_dir(pid, cgroup_root_, options_.proc_root)
                             .value_or("");
  } else {
    slot->rates = metrics::rates_between(slot->last, *s);
  }
  ProcessState& p = *slot;
  if (s->detailed) {
    // A smaps_rollup read walks the page tables (~10-20 ms of CPU for 1 GiB of 4 KiB pages
    // here): a costly one is repeated less often, keeping its average near the budget.
    // PSS and USS in between are the last ones read.
    const int period = static_cast<int>(
        std::clamp(std::ceil(s->smaps_seconds / options_.smaps_budget_s), 1.0, 60.0));
    p.smaps_wait = period - 1;
    p.have_smaps = true;
    p.pss = s->pss;
    p.uss = s->uss;
  } else if (p.have_smaps) {
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

  WatchedView v;
  v.target = t.spec.label();
  v.pid = pid;
  v.comm = s->comm;
  v.start_time_unix_s = unix_seconds() - age_s;
  v.sample = *s;
  v.rates = p.rates;
  v.eval = p.eval;
  v.limit = p.limit;
  out.push_back(std::move(v));
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
  req.sample_rate = urgent ? ms.sampling_config.aggressive_sample_rate
                           : ms.sampling_config.default_sample_rate;
  req.duration_s = config_.investigation_duration_s();
  req.overhead_budget_percent = config_.overhead_budget_percent;
  req.inject = to_string(ms.sampling_config.inject);
  req.reason = describe(why, e, ms.trigger_conditions);
  log::info("agent: investigating pid {} ({}) for up to {} (growth step {}): {}", req.pid,
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
                           store = store_, trail = p.trail, trigger_ms = unix_ms_now()] {
    InvestigationRecord rec = run_investigation(req, growth_s, growth_factory, factory, stop_);
    rec.memory = trail->series(trigger_ms);
    bool stored = false, store_failed = false;
    if (rec.memleak || (rec.growth && rec.growth->result)) {
      if (auto s = store->store(rec); s) {
        stored = true;
        log::info("agent: report {} stored ({}, {} stacks, top: {}{})", s->id, rec.end,
                  s->stacks, s->top_function.empty() ? "-" : s->top_function,
                  s->growth ? "; growth top: " +
                                  (s->growth->top_function.empty() ? "-"
                                                                   : s->growth->top_function)
                            : std::string());
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
  reap_finished();
  cgroup_cache_.clear();
  if (auto s = metrics::collect_system(options_.proc_root)) {
    system_ = *s;
  } else {
    count_error("system");
    log::warn("agent: {}", s.error().message);
  }

  // One pass over /proc serves every comm and "all" target.
  std::vector<int> all_pids;
  std::map<std::string, std::vector<int>> by_comm;
  bool need_comm = false, need_all = false;
  for (auto& t : targets_) {
    need_comm |= t->spec.kind == TargetSpec::Kind::kComm;
    need_all |= t->spec.kind == TargetSpec::Kind::kAll;
  }
  if (need_comm || need_all) all_pids = metrics::list_pids(options_.proc_root).value_or(std::vector<int>{});
  if (need_comm) {
    std::string buf, path;
    for (int pid : all_pids) {
      path = options_.proc_root + "/" + std::to_string(pid) + "/comm";
      auto text = metrics::read_proc_file(path, buf);
      if (!text) continue;
      std::string_view name = *text;
      if (name.ends_with('\n')) name.remove_suffix(1);
      by_comm[std::string(name)].push_back(pid);
    }
  }

  std::vector<WatchedView> watched;
  std::vector<TargetView> views;
  for (auto& tp : targets_) {
    TargetState& t = *tp;
    for (auto& [pid, p] : t.processes) p->seen = false;
    std::vector<int> pids = resolve(t, by_comm, all_pids);
    const size_t first_view = watched.size();
    for (int pid : pids) watch_process(t, pid, watched);
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
  snapshot_.t_s = t0;
  snapshot_.environment = to_string(config_.environment);
  snapshot_.system = system_;
  snapshot_.targets = std::move(views);
  snapshot_.watched = std::move(watched);
  counters_.ticks++;
  counters_.last_tick_s = metrics::monotonic_seconds() - t0;
}

Result<void> Agent::reload(AgentConfig config) {
  if (auto v = validate_targets(config, options_.proc_root, cgroup_root_); !v)
    return std::unexpected(v.error());
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
  collector_ = metrics::ProcessCollector(options_.proc_root, config_.detection.read_smaps);
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
