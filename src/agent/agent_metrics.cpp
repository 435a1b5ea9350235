// The agent's outward views: Prometheus exposition and the foreground status lines.  Both
// are rendered from the last Snapshot and the counters, under the agent's mutex only long
// enough to copy them.
#include <unistd.h>

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "agent/agent.h"
#include "agent/exposition.h"
#include "agent/report_store.h"

namespace leakwatch::agent {
namespace {

constexpr const char* kInvestigationOutcomes[] = {
    "duration", "overhead_budget", "stopped", "target_exited", "failed", "unavailable"};
constexpr const char* kGrowthOutcomes[] = {"duration", "stopped", "target_exited", "failed",
                                           "unavailable"};

// The newest stored finding of each target (the index is oldest first), so an alert rule
// sees what the last investigation concluded, across agent restarts.
void add_findings(Exposition& x, const std::vector<StoredReport>& stored) {
  std::map<std::string, const StoredReport*> newest;
  for (const StoredReport& r : stored)
    if (r.finding) newest[r.target] = &r;
  for (auto& [target, r] : newest) {
    const report::Finding& f = *r->finding;
    x.gauge("leakwatch_finding_info",
            "The last investigation's finding of the target: the function it names (value 1)",
            {{"target", target},
             {"function", f.function},
             {"module", f.module},
             {"verdict", report::to_string(f.verdict)},
             {"alert_level", f.alert_level},
             {"agreement", f.agreement.empty() ? "single_step" : f.agreement},
             {"report", r->id}},
            1);
    Labels lb{{"target", target}};
    x.gauge("leakwatch_finding_bytes", "Bytes the last finding's function holds or grew", lb,
            f.bytes);
    x.gauge("leakwatch_finding_growth_bytes_per_second",
            "Growth rate of the last finding's function", lb, f.bytes_per_s);
    x.gauge("leakwatch_finding_confidence", "Confidence of the last finding's verdict [0, 1]", lb,
            f.confidence);
    x.gauge("leakwatch_finding_alert_level",
            "Alert level of the last finding: 0 low, 1 medium, 2 high", lb,
            f.alert_level == "high" ? 2 : f.alert_level == "medium" ? 1 : 0);
    x.gauge("leakwatch_finding_timestamp_seconds", "When the last finding's investigation ended",
            lb, static_cast<double>(r->finished_unix_ms) / 1000.0);
  }
}

void add_psi(Exposition& x, const metrics::Psi& psi, const Labels& base) {
  auto line = [&](const char* kind, const metrics::PsiLine& l) {
    for (auto [window, v] : {std::pair{"10s", l.avg10}, {"60s", l.avg60}, {"300s", l.avg300}}) {
      Labels lb = base;
      lb.emplace_back("kind", kind);
      lb.emplace_back("window", window);
      x.gauge("leakwatch_memory_pressure_percent",
              "Share of time tasks stalled on memory (PSI avg10/avg60/avg300)", lb, v);
    }
    Labels lb = base;
    lb.emplace_back("kind", kind);
    x.counter("leakwatch_memory_pressure_stall_seconds_total",
              "Cumulative time tasks stalled on memory (PSI total)", lb,
              static_cast<double>(l.total_us) / 1e6);
  };
  line("some", psi.some);
  if (psi.full) line("full", *psi.full);
}

void add_detection(Exposition& x, const Evaluation& e, const LimitContext& lim,
                   const Labels& lb) {
  if (e.ready) {
    x.gauge("leakwatch_growth_rate_bytes_per_second",
            "Robust (Theil-Sen) growth rate of anonymous memory + swap", lb, e.growth_rate);
    x.gauge("leakwatch_file_growth_rate_bytes_per_second",
            "Growth rate of file-backed memory (page cache: not a leak)", lb, e.file_rate);
    x.gauge("leakwatch_growth_baseline_bytes_per_second",
            "Baseline growth rate from quiet periods", lb, e.baseline_rate);
  }
  x.gauge("leakwatch_growth_sustained_seconds",
          "How long growth has stayed above baseline + sigma x spread", lb, e.above_for_s);
  x.gauge("leakwatch_growth_sustained", "1 when growth has been sustained for sustained_for",
          lb, e.sustained ? 1 : 0);
  x.gauge("leakwatch_growth_increase_bytes",
          "Anonymous memory gained since the current growth run began", lb, e.increase_bytes);
  x.gauge("leakwatch_vsz_rss_divergence",
          "1 when the address space grows much faster than resident memory", lb,
          e.vsz_rss_divergence ? 1 : 0);
  x.gauge("leakwatch_oom_risk", "Risk in [0,1] of reaching the memory limit soon", lb,
          e.oom_risk);
  if (lim.limit > 0)
    x.gauge("leakwatch_memory_limit_bytes",
            "Effective limit used for OOM risk (cgroup memory.max, else MemTotal)", lb,
            lim.limit);
  if (e.time_to_limit_s)
    x.gauge("leakwatch_time_to_limit_seconds", "Predicted time until the memory limit", lb,
            *e.time_to_limit_s);
}

// Kubernetes and container identity, only for processes that have one (an empty label is
// the same as none to Prometheus).
void add_workload(Labels& lb, const WorkloadLabels& w) {
  if (!w.k8s_namespace.empty()) lb.emplace_back("namespace", w.k8s_namespace);
  if (!w.pod.empty()) lb.emplace_back("pod", w.pod);
  if (!w.container.empty()) lb.emplace_back("container", w.container);
  if (!w.container_name.empty()) lb.emplace_back("container_name", w.container_name);
}

}  // namespace

std::string Agent::metrics_text() const {
  Snapshot snap;
  AgentCounters c;
  Layer1Info l1;
  size_t running = 0;
  std::shared_ptr<ReportStore> store;
  {
    std::lock_guard lock(mu_);
    snap = snapshot_;
    c = counters_;
    l1 = layer1_;
    running = running_count_;
    store = store_;
  }
  Exposition x;

  for (const WatchedView& w : snap.watched) {
    if (w.is_cgroup) {
      const metrics::CgroupSample& cg = *w.cgroup;
      Labels lb{{"target", w.target}, {"cgroup", cg.dir}};
      x.gauge("leakwatch_cgroup_memory_current_bytes", "cgroup memory.current", lb,
              static_cast<double>(cg.current));
      x.gauge("leakwatch_cgroup_memory_max_bytes", "cgroup memory.max (+Inf: unlimited)", lb,
              cg.max ? static_cast<double>(*cg.max) : INFINITY);
      x.gauge("leakwatch_cgroup_memory_anon_bytes", "cgroup memory.stat anon", lb,
              static_cast<double>(cg.anon));
      x.gauge("leakwatch_cgroup_memory_file_bytes", "cgroup memory.stat file", lb,
              static_cast<double>(cg.file));
      x.gauge("leakwatch_cgroup_memory_swap_bytes", "cgroup memory.swap.current", lb,
              static_cast<double>(cg.swap));
      x.counter("leakwatch_cgroup_oom_events_total", "cgroup memory.events oom", lb,
                static_cast<double>(cg.events.oom));
      x.counter("leakwatch_cgroup_oom_kill_events_total", "cgroup memory.events oom_kill", lb,
                static_cast<double>(cg.events.oom_kill));
      if (cg.pressure) {
        Labels pl{{"scope", "cgroup"}, {"cgroup", cg.dir}};
        add_psi(x, *cg.pressure, pl);
      }
      add_detection(x, w.eval, w.limit, lb);
      continue;
    }
    const metrics::ProcessSample& s = w.sample;
    Labels lb{{"target", w.target}, {"pid", std::to_string(w.pid)}, {"comm", w.comm}};
    add_workload(lb, w.workload);
    auto bytes = [&](const char* name, const char* help, uint64_t v) {
      x.gauge(name, help, lb, static_cast<double>(v));
    };
    bytes("leakwatch_process_rss_bytes", "Resident set size", s.rss);
    if (s.detailed) {
      bytes("leakwatch_process_pss_bytes", "Proportional set size (smaps_rollup)", s.pss);
      bytes("leakwatch_process_uss_bytes", "Unique set size: Private_Clean + Private_Dirty",
            s.uss);
    }
    bytes("leakwatch_process_anon_bytes", "Anonymous resident memory", s.anon);
    bytes("leakwatch_process_file_bytes", "File-backed resident memory", s.file);
    bytes("leakwatch_process_shmem_bytes", "Shared-memory resident memory", s.shmem);
    bytes("leakwatch_process_swap_bytes", "Swapped-out memory", s.swap);
    bytes("leakwatch_process_virtual_bytes", "Virtual memory size (VSZ)", s.vsz);
    x.gauge("leakwatch_process_start_time_seconds", "Process start, Unix time (a new value "
            "is a restart)", lb, std::round(w.start_time_unix_s));
    if (w.rates) {
      x.gauge("leakwatch_process_minor_faults_per_second", "Minor page faults per second", lb,
              w.rates->minflt_per_s);
      x.gauge("leakwatch_process_major_faults_per_second", "Major page faults per second", lb,
              w.rates->majflt_per_s);
      x.gauge("leakwatch_process_cpu_percent", "CPU use, percent of one CPU", lb,
              w.rates->cpu_percent);
    }
    add_detection(x, w.eval, w.limit, lb);
  }

  for (const TargetView& t : snap.targets) {
    Labels lb{{"target", t.target}};
    x.gauge("leakwatch_target_up", "1 when the target resolves to something to watch", lb,
            t.problem.empty() ? 1 : 0);
    x.gauge("leakwatch_target_processes", "Processes watched for the target", lb,
            static_cast<double>(t.processes));
    x.gauge("leakwatch_investigation_running", "1 while an investigation of the target runs",
            lb, t.investigating ? 1 : 0);
    for (const char* outcome : kInvestigationOutcomes)
      c.investigations.try_emplace({t.target, outcome}, 0);
    for (const char* outcome : kGrowthOutcomes) c.growth_steps.try_emplace({t.target, outcome}, 0);
  }
  for (auto& [key, n] : c.triggers)
    x.counter("leakwatch_triggers_total", "Trigger conditions that started to hold",
              {{"target", key.first}, {"reason", key.second}}, static_cast<double>(n));
  for (auto& [key, n] : c.investigations)
    x.counter("leakwatch_investigations_total", "Investigations ended, by how they ended",
              {{"target", key.first}, {"outcome", key.second}}, static_cast<double>(n));
  for (auto& [key, n] : c.growth_steps)
    x.counter("leakwatch_growth_steps_total",
              "Growth steps (layer 2, before the allocation trace) ended, by how they ended",
              {{"target", key.first}, {"outcome", key.second}}, static_cast<double>(n));
  x.gauge("leakwatch_investigations_running", "Investigations running now", {},
          static_cast<double>(running));

  // Loss counters: collection errors, and what investigations reported losing.
  for (const char* kind : {"permission", "parse", "system", "cgroup"})
    c.collection_errors.try_emplace(kind, 0);
  for (auto& [kind, n] : c.collection_errors)
    x.counter("leakwatch_collection_errors_total", "Layer-1 reads that failed", {{"kind", kind}},
              static_cast<double>(n));
  uint64_t lost_sum = 0;
  for (auto& [name, n] : c.lost) {
    lost_sum += n;
    x.counter("leakwatch_investigation_lost_by_counter_total",
              "Events investigations lost, by the report's loss counter", {{"counter", name}},
              static_cast<double>(n));
  }
  x.counter("leakwatch_investigation_lost_total",
            "Events lost by investigations (full maps, lost stacks, failed attaches)", {},
            static_cast<double>(lost_sum));
  x.counter("leakwatch_reports_written_total", "Investigation reports stored", {},
            static_cast<double>(c.reports_stored));
  x.counter("leakwatch_report_errors_total", "Investigation reports that could not be stored",
            {}, static_cast<double>(c.report_errors));
  x.counter("leakwatch_reports_pruned_total", "Stored reports removed by retention", {},
            static_cast<double>(store->pruned_total()));
  const std::vector<StoredReport> stored = store->list();
  x.gauge("leakwatch_reports_stored", "Reports in reports_dir's index", {},
          static_cast<double>(stored.size()));
  add_findings(x, stored);

  // Profile sinks: what reached the stores and what was lost on the way.
  for (const sink::SinkStats& st : sink_stats()) {
    Labels lb{{"sink", st.sink}};
    x.counter("leakwatch_sink_profiles_pushed_total", "Profiles a sink's store accepted", lb,
              static_cast<double>(st.pushed));
    x.counter("leakwatch_sink_attempts_failed_total",
              "Push attempts that failed (retried with backoff, or given up)", lb,
              static_cast<double>(st.attempts_failed));
    for (auto [reason, n] : {std::pair{"attempts", st.dropped_attempts},
                             {"rejected", st.dropped_rejected},
                             {"queue_full", st.dropped_queue_full},
                             {"shutdown", st.dropped_shutdown}}) {
      Labels dl = lb;
      dl.emplace_back("reason", reason);
      x.counter("leakwatch_sink_profiles_dropped_total",
                "Profiles not delivered: retries exhausted, rejected by the store, pushed "
                "out of a full queue, or queued at shutdown",
                dl, static_cast<double>(n));
    }
    x.gauge("leakwatch_sink_queue_length", "Profiles waiting for a sink (the one in flight "
            "included)", lb, static_cast<double>(st.queued));
  }

  if (snap.system) {
    x.gauge("leakwatch_system_memory_total_bytes", "MemTotal", {},
            static_cast<double>(snap.system->meminfo.total));
    x.gauge("leakwatch_system_memory_available_bytes", "MemAvailable", {},
            static_cast<double>(snap.system->meminfo.available));
    if (snap.system->pressure) add_psi(x, *snap.system->pressure, {{"scope", "system"}});
  }

  // The agent's own cost.
  if (auto self = metrics::self_usage()) {
    x.counter("leakwatch_agent_cpu_seconds_total", "CPU time used by the agent", {},
              self->cpu_seconds);
    x.gauge("leakwatch_agent_resident_memory_bytes", "Resident memory of the agent", {},
            static_cast<double>(self->rss_bytes));
  }
  x.gauge("leakwatch_agent_collection_seconds", "Duration of the last collection round", {},
          c.last_tick_s);
  x.gauge("leakwatch_agent_collection_cpu_seconds",
          "CPU time of the last collection round (the agent's loop thread)", {},
          c.last_tick_cpu_s);
  x.gauge("leakwatch_agent_layer1_cpu_seconds",
          "CPU time of the last process-table refresh (task iterator scan or /proc listing)",
          {}, c.last_layer1_cpu_s);
  x.gauge("leakwatch_agent_layer1_info", "Where layer 1 reads process figures from",
          {{"source", l1.source}, {"rss", l1.rss_figure}, {"fallback_reason", l1.fallback_reason}},
          1);
  x.gauge("leakwatch_agent_layer1_processes", "Processes in the last process-table refresh",
          {}, static_cast<double>(l1.processes));
  x.gauge("leakwatch_agent_layer1_unvisited_processes",
          "Processes read from /proc because the task iterator does not visit them", {},
          static_cast<double>(l1.unvisited));
  x.counter("leakwatch_smaps_reads_total", "smaps_rollup reads (PSS/USS of suspects)", {},
            static_cast<double>(c.smaps_reads));
  x.counter("leakwatch_smaps_skipped_total",
            "Suspects whose smaps_rollup was not read: above smaps_max_rss", {},
            static_cast<double>(c.smaps_skipped));
  x.counter("leakwatch_agent_collections_total", "Collection rounds", {},
            static_cast<double>(c.ticks));
  x.gauge("leakwatch_agent_uptime_seconds", "Seconds since the agent started", {},
          metrics::monotonic_seconds() - agent_start_s_);
  x.gauge("leakwatch_agent_info", "Agent configuration", {{"environment", snap.environment}},
          1);
  return x.text();
}

std::vector<std::string> Agent::status_lines() const {
  Snapshot snap = snapshot();
  std::vector<std::string> out;
  for (const TargetView& t : snap.targets) {
    if (!t.problem.empty() && t.processes == 0)
      out.push_back(fmt::format("[{}] {}", t.target, t.problem));
  }
  for (const WatchedView& w : snap.watched) {
    std::string head, figures;
    if (w.is_cgroup) {
      const metrics::CgroupSample& cg = *w.cgroup;
      head = fmt::format("[{}] cgroup", w.target);
      figures = fmt::format("current {}, max {}, anon {}, file {}, oom {}/{} kills",
                            format_bytes(static_cast<double>(cg.current)),
                            cg.max ? format_bytes(static_cast<double>(*cg.max)) : "max",
                            format_bytes(static_cast<double>(cg.anon)),
                            format_bytes(static_cast<double>(cg.file)), cg.events.oom,
                            cg.events.oom_kill);
    } else {
      const metrics::ProcessSample& s = w.sample;
      head = fmt::format("[{}] pid {} {}", w.target, w.pid, s.comm);
      if (!w.workload.pod.empty())
        head += fmt::format(" ({}{}{})",
                            w.workload.k8s_namespace.empty() ? "" : w.workload.k8s_namespace + "/",
                            w.workload.pod,
                            w.workload.container_name.empty() ? "" : "/" + w.workload.container_name);
      figures = fmt::format("rss {}, anon {}, file {}, swap {}, vsz {}",
                            format_bytes(static_cast<double>(s.rss)),
                            format_bytes(static_cast<double>(s.anon)),
                            format_bytes(static_cast<double>(s.file)),
                            format_bytes(static_cast<double>(s.swap)),
                            format_bytes(static_cast<double>(s.vsz)));
      if (s.detailed)
        figures += fmt::format(", pss {}, uss {}", format_bytes(static_cast<double>(s.pss)),
                               format_bytes(static_cast<double>(s.uss)));
      if (w.rates)
        figures += fmt::format(", faults {:.0f}/s ({:.0f}/s major)", w.rates->minflt_per_s,
                               w.rates->majflt_per_s);
    }
    std::string growth;
    const Evaluation& e = w.eval;
    if (!e.ready) {
      growth = "growth: collecting";
    } else {
      growth = fmt::format("growth {} ({})", format_rate(e.growth_rate), to_string(e.kind));
      if (e.above) growth += fmt::format(", above baseline for {}", format_duration(e.above_for_s));
      if (e.sustained) growth += ", SUSTAINED";
      if (e.vsz_rss_divergence) growth += ", VSZ diverging";
    }
    std::string risk = fmt::format("oom risk {:.2f}", e.oom_risk);
    if (e.time_to_limit_s) risk += fmt::format(" (limit in {})", format_duration(*e.time_to_limit_s));
    out.push_back(fmt::format("{}: {} | {} | {}{}", head, figures, growth, risk,
                              w.investigating ? " | investigating" : ""));
  }
  return out;
}

}  // namespace leakwatch::agent
