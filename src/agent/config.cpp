#include "agent/config.h"

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "common/atomic_file.h"

namespace leakwatch::agent {

double environment_duration_cap_s(Environment env) {
  switch (env) {
    case Environment::kProduction: return 300;
    case Environment::kStaging: return 900;
    case Environment::kDevelopment: return 1800;
    case Environment::kCi: return 600;
  }
  return 300;
}

const char* to_string(Environment env) {
  switch (env) {
    case Environment::kProduction: return "production";
    case Environment::kStaging: return "staging";
    case Environment::kDevelopment: return "development";
    case Environment::kCi: return "ci";
  }
  return "production";
}

const char* to_string(InjectPolicy p) {
  switch (p) {
    case InjectPolicy::kNever: return "never";
    case InjectPolicy::kOverBudget: return "over_budget";
    case InjectPolicy::kAlways: return "always";
  }
  return "?";
}

std::string TargetSpec::label() const {
  switch (kind) {
    case Kind::kComm: return "comm:" + comm;
    case Kind::kPid: return "pid:" + std::to_string(pid);
    case Kind::kCgroup: return "cgroup:" + cgroup;
    case Kind::kAll: return "all";
    case Kind::kPod: return "pod:" + pod;
    case Kind::kNamespace: return "namespace:" + k8s_namespace;
    case Kind::kSelector: return "selector:" + selector.text;
  }
  return "?";
}


double AgentConfig::investigation_duration_s() const {
  return std::min(memleak_sampling.sampling_config.duration_limit_s,
                  environment_duration_cap_s(environment));
}

double AgentConfig::growth_step_s() const {
  return std::min(memleak_sampling.sampling_config.growth_seconds,
                  investigation_duration_s() / 2);
}

Result<ListenAddress> parse_listen(std::string_view text) {
  ListenAddress a;
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return fail("expected HOST:PORT such as 127.0.0.1:9464, got \"{}\"", text);
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  int p = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (host.empty() || ec != std::errc() || end != port.data() + port.size() || p < 0 ||
      p > 65535)
    return fail("expected HOST:PORT such as 127.0.0.1:9464, got \"{}\"", text);
  a.host = std::string(host);
  a.port = p;
  return a;
}

namespace {

// The accepted range of a number of the file, and how messages state it.
struct Range {
  double lo, hi;
  const char* what;  // "a duration"
  const char* text;  // "from 100ms to 1h"
};

constexpr double kDay = 86400;
constexpr uint64_t kMaxInteger = 1000000000;
constexpr size_t kMaxPath = 4095;       // PATH_MAX - 1
constexpr size_t kMaxProcessName = 255; // a file name (NAME_MAX); the kernel compares 15
constexpr size_t kMaxListen = 300;
constexpr size_t kMaxConfigBytes = 1 << 20;

// Assigns the result of a Result-returning expression or returns its error.
#define LW_ASSIGN(dst, expr)                            \
  do {                                                  \
    auto lw_r_ = (expr);                                \
    if (!lw_r_) return std::unexpected(lw_r_.error());  \
    dst = *lw_r_;                                       \
  } while (0)
#define LW_CHECK(expr)                                  \
  do {                                                  \
    auto lw_r_ = (expr);                                \
    if (!lw_r_) return std::unexpected(lw_r_.error());  \
  } while (0)

// Walks the YAML tree, remembering the dotted key path for messages.  yaml-cpp reports
// problems with exceptions; they are caught at the two places it can throw (Load and
// scalar access) and turned into Errors, so nothing escapes this file.
class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  Error error(const YAML::Node& at, const std::string& key, const std::string& what) const {
    int line = at.Mark().is_null() ? 0 : at.Mark().line + 1;
    if (line > 0) return Error{fmt::format("{}:{}: {}: {}", source_, line, key, what), 0};
    return Error{fmt::format("{}: {}: {}", source_, key, what), 0};
  }

  // Rejects keys outside `allowed`: a misspelt key must not silently keep its default.
  Result<void> check_keys(const YAML::Node& map, const std::string& path,
                          std::initializer_list<const char*> allowed) const {
    if (!map.IsMap()) return std::unexpected(error(map, path, "expected a mapping"));
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string k = it->first.Scalar();
      if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }) ==
          allowed.end()) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return std::unexpected(error(it->first, join(path, k),
                                     fmt::format("unknown key (expected one of: {})", list)));
      }
    }
    return {};
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  Result<std::string> scalar(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return std::unexpected(error(n, key, "expected a single value"));
    return n.Scalar();
  }

  // Parses a scalar with one of the unit parsers; the message says what was expected.
  Result<double> quantity(const YAML::Node& n, const std::string& key, QuantityParser p) const {
    auto s = scalar(n, key);
    if (!s) return std::unexpected(s.error());
    auto v = p(*s);
    if (!v) return std::unexpected(error(n, key, v.error().message));
    return *v;
  }

  // <which>_sample_bytes (a size: by bytes) or <which>_sample_rate (1 in N calls), not both.
  Result<void> sampling(const YAML::Node& s, const std::string& sp, const std::string& which,
                        report::Sampling& out) const {
    const std::string bytes_key = which + "_sample_bytes", rate_key = which + "_sample_rate";
    const YAML::Node bytes = s[bytes_key], rate = s[rate_key];
    if (bytes && rate)
      return std::unexpected(error(rate, sp + "." + rate_key,
                                   fmt::format("give {} (bytes) or {} (1 in N calls), not both",
                                               bytes_key, rate_key)));
    if (bytes) {
      auto parsed = quantity(bytes, sp + "." + bytes_key, parse_size);
      if (!parsed) return std::unexpected(parsed.error());
      const double r = *parsed;
      if (r < 1 || r > static_cast<double>(uint64_t{1} << 40))
        return std::unexpected(
            error(bytes, sp + "." + bytes_key, "expected a size from 1 byte to 1 TiB"));
      out = {report::SamplingMode::kBytes, static_cast<uint64_t>(r)};
    } else if (rate) {
      auto parsed = positive_integer(rate, sp + "." + rate_key);
      if (!parsed) return std::unexpected(parsed.error());
      const uint64_t n = *parsed;
      out = {n > 1 ? report::SamplingMode::kCalls : report::SamplingMode::kExact, n};
    }
    return {};
  }

  // A quantity within [lo, hi]; the error states the range ("from 100ms to 1h").  Every
  // number of the file has one: a value far outside it (1ms, 1e308d, 1e-300) would make
  // the agent spin, wait forever or never trigger, and is surely a mistake.
  Result<double> ranged(const YAML::Node& n, const std::string& key, QuantityParser p,
                        const Range& r) const {
    auto v = quantity(n, key, p);
    if (!v) return v;
    if (!(*v >= r.lo && *v <= r.hi))
      return std::unexpected(
          error(n, key, fmt::format("expected {} {}, got \"{}\"", r.what, r.text, n.Scalar())));
    return v;
  }

  // A string of at most `max` bytes (names and paths: a 5,000-character process name can
  // never match and only costs memory in every metric label).
  Result<std::string> bounded_scalar(const YAML::Node& n, const std::string& key,
                                     size_t max) const {
    auto s = scalar(n, key);
    if (s && s->size() > max)
      return std::unexpected(error(
          n, key, fmt::format("too long: {} characters, at most {}", s->size(), max)));
    return s;
  }

  // yaml-cpp keeps every key of a mapping and its lookups return the first: a repeated key
  // (two `listen:` lines) would silently lose one value.  Checked over the whole document.
  Result<void> check_duplicate_keys(const YAML::Node& n, const std::string& path) const {
    if (n.IsSequence()) {
      for (size_t i = 0; i < n.size(); ++i)
        LW_CHECK(check_duplicate_keys(n[i], fmt::format("{}[{}]", path, i)));
    } else if (n.IsMap()) {
      std::vector<std::pair<std::string, int>> seen;  // key, line
      for (auto it = n.begin(); it != n.end(); ++it) {
        std::string k = it->first.IsScalar() ? it->first.Scalar() : "";
        int line = it->first.Mark().is_null() ? 0 : it->first.Mark().line + 1;
        for (const auto& [other, other_line] : seen)
          if (other == k)
            return std::unexpected(error(it->first, join(path, k),
                                         fmt::format("duplicate key (first given on line {})",
                                                     other_line)));
        seen.emplace_back(k, line);
        LW_CHECK(check_duplicate_keys(it->second, join(path, k)));
      }
    }
    return {};
  }

  Result<Threshold> threshold(const YAML::Node& n, const std::string& key,
                              QuantityParser p) const {
    auto s = scalar(n, key);
    if (!s) return std::unexpected(s.error());
    auto t = parse_threshold(*s, p);
    if (!t) return std::unexpected(error(n, key, t.error().message));
    return *t;
  }

  Result<uint64_t> positive_integer(const YAML::Node& n, const std::string& key,
                                    uint64_t max = kMaxInteger) const {
    auto s = scalar(n, key);
    if (!s) return std::unexpected(s.error());
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size() || v == 0)
      return std::unexpected(
          error(n, key, fmt::format("expected a positive integer, got \"{}\"", *s)));
    if (v > max)
      return std::unexpected(
          error(n, key, fmt::format("expected an integer from 1 to {}, got {}", max, v)));
    return v;
  }

  Result<bool> boolean(const YAML::Node& n, const std::string& key) const {
    auto s = scalar(n, key);
    if (!s) return std::unexpected(s.error());
    std::string v = *s;
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
    if (v == "true" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "no" || v == "off") return false;
    return std::unexpected(error(n, key, fmt::format("expected true or false, got \"{}\"", *s)));
  }

  Result<AgentConfig> parse(const YAML::Node& root) const;

 private:
  Result<void> parse_targets(const YAML::Node& n, AgentConfig& c) const;
  Result<void> parse_sampling(const YAML::Node& n, AgentConfig& c) const;
  Result<void> parse_triggers(const YAML::Node& n, TriggerConditions& t) const;
  Result<void> parse_detection(const YAML::Node& n, DetectionConfig& d) const;
  Result<void> parse_reports(const YAML::Node& n, ReportsConfig& r) const;
  Result<void> parse_kubernetes(const YAML::Node& n, KubernetesConfig& k) const;
  Result<void> parse_sinks(const YAML::Node& n, AgentConfig& c) const;

  std::string source_;
};

Result<AgentConfig> Parser::parse(const YAML::Node& root) const {
  AgentConfig c;
  if (!root.IsMap()) return std::unexpected(error(root, "(top level)", "expected a mapping"));
  LW_CHECK(check_keys(root, "",
                      {"listen", "reports_dir", "environment", "targets", "memleak_sampling",
                       "overhead_budget_percent", "detection", "reports", "kubernetes", "sinks",
                       "node_name"}));
  if (auto n = root["listen"]) {
    LW_ASSIGN(c.listen, bounded_scalar(n, "listen", kMaxListen));
    if (c.listen == "off") c.listen.clear();
    if (!c.listen.empty()) {
      auto a = parse_listen(c.listen);
      if (!a) return std::unexpected(error(n, "listen", a.error().message));
    }
  }
  if (auto n = root["reports_dir"]) {
    LW_ASSIGN(c.reports_dir, bounded_scalar(n, "reports_dir", kMaxPath));
    if (c.reports_dir.empty())
      return std::unexpected(error(n, "reports_dir", "expected a directory path"));
  }
  if (auto n = root["environment"]) {
    std::string env;
    LW_ASSIGN(env, scalar(n, "environment"));
    if (env == "production") c.environment = Environment::kProduction;
    else if (env == "staging") c.environment = Environment::kStaging;
    else if (env == "development") c.environment = Environment::kDevelopment;
    else if (env == "ci") c.environment = Environment::kCi;
    else
      return std::unexpected(error(
          n, "environment",
          fmt::format("expected production, staging, development or ci, got \"{}\"", env)));
  }
  auto targets = root["targets"];
  if (!targets)
    return std::unexpected(error(root, "targets", "missing (list what to watch: comm, pid, "
                                                  "cgroup or all)"));
  LW_CHECK(parse_targets(targets, c));
  if (auto n = root["memleak_sampling"]) LW_CHECK(parse_sampling(n, c));
  if (auto n = root["overhead_budget_percent"]) {
    LW_ASSIGN(c.overhead_budget_percent, quantity(n, "overhead_budget_percent", parse_number));
    if (c.overhead_budget_percent <= 0 || c.overhead_budget_percent > 100)
      return std::unexpected(error(n, "overhead_budget_percent",
                                   fmt::format("expected a percentage in (0, 100], got {}",
                                               c.overhead_budget_percent)));
  }
  if (auto n = root["detection"]) LW_CHECK(parse_detection(n, c.detection));
  if (auto n = root["reports"]) LW_CHECK(parse_reports(n, c.reports));
  if (auto n = root["kubernetes"]) LW_CHECK(parse_kubernetes(n, c.kubernetes));
  if (auto n = root["sinks"]) LW_CHECK(parse_sinks(n, c));
  if (auto n = root["node_name"]) LW_ASSIGN(c.node_name, scalar(n, "node_name"));
  return c;
}

Result<void> Parser::parse_targets(const YAML::Node& n, AgentConfig& c) const {
  if (!n.IsSequence() || n.size() == 0)
    return std::unexpected(error(n, "targets", "expected a non-empty list of targets"));
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node t = n[i];
    std::string key = fmt::format("targets[{}]", i);
    LW_CHECK(check_keys(t, key, {"comm", "pid", "cgroup", "all", "pod", "namespace", "selector"}));
    if (t.size() != 1)
      return std::unexpected(error(t, key, "expected exactly one of comm, pid, cgroup, all, pod, "
                                           "namespace or selector in each target"));
    TargetSpec spec;
    spec.line = t.Mark().line + 1;
    if (auto v = t["comm"]) {
      spec.kind = TargetSpec::Kind::kComm;
      LW_ASSIGN(spec.comm, bounded_scalar(v, key + ".comm", kMaxProcessName));
      if (spec.comm.empty())
        return std::unexpected(error(v, key + ".comm", "expected a process name"));
    } else if (auto v = t["pid"]) {
      spec.kind = TargetSpec::Kind::kPid;
      uint64_t pid = 0;
      LW_ASSIGN(pid, positive_integer(v, key + ".pid", 0x3fffffff));  // PID_MAX_LIMIT
      spec.pid = static_cast<int>(pid);
    } else if (auto v = t["cgroup"]) {
      spec.kind = TargetSpec::Kind::kCgroup;
      LW_ASSIGN(spec.cgroup, bounded_scalar(v, key + ".cgroup", kMaxPath));
      while (spec.cgroup.size() > 1 && spec.cgroup.ends_with('/')) spec.cgroup.pop_back();
      if (!spec.cgroup.starts_with('/'))
        return std::unexpected(error(v, key + ".cgroup",
                                     fmt::format("expected an absolute cgroup v2 directory such "
                                                 "as /sys/fs/cgroup/system.slice/x.service, "
                                                 "got \"{}\"", spec.cgroup)));
    } else if (auto v = t["all"]) {
      spec.kind = TargetSpec::Kind::kAll;
      bool all = false;
      LW_ASSIGN(all, boolean(v, key + ".all"));
      if (!all)
        return std::unexpected(error(v, key + ".all", "expected true (remove the target "
                                                      "to watch nothing)"));
    } else if (auto v = t["pod"]) {
      spec.kind = TargetSpec::Kind::kPod;
      LW_ASSIGN(spec.pod, scalar(v, key + ".pod"));
      if (spec.pod.empty() || spec.pod.front() == '/' || spec.pod.back() == '/')
        return std::unexpected(error(v, key + ".pod", "expected a pod name, NAMESPACE/NAME or "
                                                      "a pod UID"));
    } else if (auto v = t["namespace"]) {
      spec.kind = TargetSpec::Kind::kNamespace;
      LW_ASSIGN(spec.k8s_namespace, scalar(v, key + ".namespace"));
      if (spec.k8s_namespace.empty())
        return std::unexpected(error(v, key + ".namespace", "expected a namespace"));
    } else if (auto v = t["selector"]) {
      spec.kind = TargetSpec::Kind::kSelector;
      std::string text;
      if (v.IsMap()) {  // {app: web, tier: api}: equality on every key
        for (auto it = v.begin(); it != v.end(); ++it)
          text += (text.empty() ? "" : ",") + it->first.Scalar() + "=" + it->second.Scalar();
      } else {
        LW_ASSIGN(text, scalar(v, key + ".selector"));
      }
      auto sel = parse_label_selector(text);
      if (!sel) return std::unexpected(error(v, key + ".selector", sel.error().message));
      spec.selector = std::move(*sel);
    }
    c.targets.push_back(std::move(spec));
  }
  return {};
}

Result<void> Parser::parse_sampling(const YAML::Node& n, AgentConfig& c) const {
  const std::string path = "memleak_sampling";
  LW_CHECK(check_keys(n, path, {"enabled", "trigger_conditions", "sampling_config", "cooldown",
                                "max_concurrent"}));
  MemleakSampling& m = c.memleak_sampling;
  m.enabled = true;  // a memleak_sampling block turns sampling on unless it says otherwise
  if (auto v = n["enabled"]) LW_ASSIGN(m.enabled, boolean(v, path + ".enabled"));
  if (auto v = n["trigger_conditions"]) LW_CHECK(parse_triggers(v, m.trigger_conditions));
  if (auto v = n["cooldown"])
    LW_ASSIGN(m.cooldown_s, ranged(v, path + ".cooldown", parse_duration,
                                   {0, 30 * kDay, "a duration", "from 0 to 30d"}));
  if (auto v = n["max_concurrent"]) {
    uint64_t mc = 0;
    LW_ASSIGN(mc, positive_integer(v, path + ".max_concurrent", 64));
    m.max_concurrent = static_cast<int>(mc);
  }
  if (auto s = n["sampling_config"]) {
    const std::string sp = path + ".sampling_config";
    LW_CHECK(check_keys(s, sp, {"default_sample_bytes", "aggressive_sample_bytes",
                                "default_sample_rate", "aggressive_sample_rate",
                                "duration_limit", "growth_seconds", "inject"}));
    SamplingConfig& sc = m.sampling_config;
    LW_CHECK(sampling(s, sp, "default", sc.default_sampling));
    LW_CHECK(sampling(s, sp, "aggressive", sc.aggressive_sampling));
    // The environment caps it further (300 s in production).
    if (auto v = s["duration_limit"])
      LW_ASSIGN(sc.duration_limit_s, ranged(v, sp + ".duration_limit", parse_duration,
                                            {0.1, kDay, "a duration", "from 100ms to 1d"}));
    // Durations never parse negative; 0 turns the growth step off.
    if (auto v = s["growth_seconds"])
      LW_ASSIGN(sc.growth_seconds, ranged(v, sp + ".growth_seconds", parse_duration,
                                          {0, kDay, "a duration", "from 0 (off) to 1d"}));
    if (auto v = s["inject"]) {
      std::string policy;
      LW_ASSIGN(policy, scalar(v, sp + ".inject"));
      if (policy == "never") sc.inject = InjectPolicy::kNever;
      else if (policy == "over_budget") sc.inject = InjectPolicy::kOverBudget;
      else if (policy == "always") sc.inject = InjectPolicy::kAlways;
      else
        return std::unexpected(error(
            v, sp + ".inject",
            fmt::format("expected never, over_budget or always, got \"{}\"", policy)));
    }
  }
  return {};
}

Result<void> Parser::parse_triggers(const YAML::Node& n, TriggerConditions& t) const {
  const std::string path = "memleak_sampling.trigger_conditions";
  // The list-of-single-key-maps form of the BCC deployments, or a plain mapping.
  std::vector<std::pair<YAML::Node, YAML::Node>> items;  // key node, value node
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node item = n[i];
      std::string key = fmt::format("{}[{}]", path, i);
      if (!item.IsMap() || item.size() != 1)
        return std::unexpected(error(item, key, "expected one condition per list item, such "
                                                "as memory_growth_rate: \">5MB/min\""));
      items.emplace_back(item.begin()->first, item.begin()->second);
    }
  } else if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) items.emplace_back(it->first, it->second);
  } else {
    return std::unexpected(error(n, path, "expected a list of conditions"));
  }
  for (auto& [k, v] : items) {
    std::string name = k.Scalar();
    std::string key = path + "." + name;
    if (name == "memory_growth_rate") {
      LW_ASSIGN(t.memory_growth_rate, threshold(v, key, parse_rate));
      if (t.memory_growth_rate->value > 1e12)
        return std::unexpected(error(v, key, "expected a rate of at most 1TB/s"));
    } else if (name == "rss_increase_threshold") {
      LW_ASSIGN(t.rss_increase_threshold, threshold(v, key, parse_size));
      if (t.rss_increase_threshold->value > 1e15)
        return std::unexpected(error(v, key, "expected a size of at most 1000TB"));
    } else if (name == "oom_risk_score") {
      LW_ASSIGN(t.oom_risk_score, threshold(v, key, parse_number));
      if (t.oom_risk_score->value > 1)
        return std::unexpected(error(v, key, "expected a score between 0 and 1"));
    } else {
      return std::unexpected(error(k, key, "unknown condition (expected memory_growth_rate, "
                                           "rss_increase_threshold or oom_risk_score)"));
    }
  }
  return {};
}

Result<void> Parser::parse_detection(const YAML::Node& n, DetectionConfig& d) const {
  const std::string p = "detection";
  LW_CHECK(check_keys(n, p, {"interval", "rate_window", "sustained_for", "baseline_window",
                             "sigma", "min_spread", "oom_horizon", "warmup_grace",
                             "read_smaps", "smaps_max_rss", "smaps_max_cost", "source"}));
  struct Field {
    const char* key;
    double* dst;
    QuantityParser parse;
    Range range;
  };
  // The interval is what the agent sleeps between rounds: below 100 ms it would spend its
  // time reading /proc, above an hour it would not be watching.
  const Field fields[] = {
      {"interval", &d.interval_s, parse_duration, {0.1, 3600, "a duration", "from 100ms to 1h"}},
      {"rate_window", &d.rate_window_s, parse_duration,
       {0.3, 30 * kDay, "a duration", "from 300ms to 30d"}},
      {"sustained_for", &d.sustained_for_s, parse_duration,
       {0, 30 * kDay, "a duration", "from 0 to 30d"}},
      {"baseline_window", &d.baseline_window_s, parse_duration,
       {0, 30 * kDay, "a duration", "from 0 to 30d"}},
      {"sigma", &d.sigma, parse_number, {0, 100, "a number", "from 0 to 100"}},
      {"min_spread", &d.min_spread_bytes_per_s, parse_rate,
       {0, 1e12, "a rate", "from 0 to 1TB/s"}},
      {"oom_horizon", &d.oom_horizon_s, parse_duration,
       {1, 30 * kDay, "a duration", "from 1s to 30d"}},
      {"warmup_grace", &d.warmup_grace_s, parse_duration,
       {0, 30 * kDay, "a duration", "from 0 to 30d"}},
  };
  for (const Field& f : fields) {
    auto v = n[f.key];
    if (!v) continue;
    LW_ASSIGN(*f.dst, ranged(v, p + "." + f.key, f.parse, f.range));
  }
  if (auto v = n["read_smaps"]) {
    std::string mode;
    LW_ASSIGN(mode, scalar(v, p + ".read_smaps"));
    if (mode == "suspects") d.read_smaps = DetectionConfig::Smaps::kSuspects;
    else if (mode == "all" || mode == "true") d.read_smaps = DetectionConfig::Smaps::kAll;
    else if (mode == "off" || mode == "false") d.read_smaps = DetectionConfig::Smaps::kOff;
    else
      return std::unexpected(error(v, p + ".read_smaps", fmt::format("expected suspects, all or "
                                                                     "off, got \"{}\"", mode)));
  }
  if (auto v = n["smaps_max_rss"]) LW_ASSIGN(d.smaps_max_rss, quantity(v, p + ".smaps_max_rss",
                                                                       parse_size));
  if (auto v = n["smaps_max_cost"])
    LW_ASSIGN(d.smaps_max_cost_s, quantity(v, p + ".smaps_max_cost", parse_duration));
  if (auto v = n["source"]) {
    std::string src;
    LW_ASSIGN(src, scalar(v, p + ".source"));
    if (src == "auto") d.source = metrics::Layer1Source::kAuto;
    else if (src == "bpf") d.source = metrics::Layer1Source::kIterator;
    else if (src == "proc") d.source = metrics::Layer1Source::kProc;
    else
      return std::unexpected(error(v, p + ".source", fmt::format("expected auto, bpf or proc, "
                                                                 "got \"{}\"", src)));
  }
  if (d.rate_window_s < 3 * d.interval_s)
    return std::unexpected(error(n, p + ".rate_window",
                                 fmt::format("expected at least 3 sampling intervals ({}s)",
                                             3 * d.interval_s)));
  return {};
}

Result<void> Parser::parse_reports(const YAML::Node& n, ReportsConfig& r) const {
  LW_CHECK(check_keys(n, "reports", {"max_count", "max_age"}));
  if (auto v = n["max_count"]) {
    uint64_t c = 0;
    LW_ASSIGN(c, positive_integer(v, "reports.max_count", 1000000));
    r.max_count = static_cast<size_t>(c);
  }
  if (auto v = n["max_age"]) {
    LW_ASSIGN(r.max_age_s, ranged(v, "reports.max_age", parse_duration,
                                  {60, 3650 * kDay, "a duration", "from 1min to 3650d"}));
  }
  return {};
}

Result<void> Parser::parse_kubernetes(const YAML::Node& n, KubernetesConfig& k) const {
  LW_CHECK(check_keys(n, "kubernetes", {"log_dir", "pod_manifests", "refresh"}));
  if (auto v = n["log_dir"]) LW_ASSIGN(k.log_dir, scalar(v, "kubernetes.log_dir"));
  if (auto v = n["pod_manifests"]) LW_ASSIGN(k.pod_manifests, scalar(v, "kubernetes.pod_manifests"));
  if (auto v = n["refresh"]) {
    LW_ASSIGN(k.refresh_s, quantity(v, "kubernetes.refresh", parse_duration));
    if (k.refresh_s <= 0)
      return std::unexpected(error(v, "kubernetes.refresh", "expected a positive duration"));
  }
  return {};
}

Result<void> Parser::parse_sinks(const YAML::Node& n, AgentConfig& c) const {
  if (!n.IsSequence())
    return std::unexpected(error(n, "sinks", "expected a list of sinks (pyroscope: URL or "
                                             "parca: HOST:PORT)"));
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string key = fmt::format("sinks[{}]", i);
    LW_CHECK(check_keys(item, key, {"pyroscope", "parca", "tenant", "insecure",
                                    "bearer_token_file", "timeout", "max_attempts", "backoff",
                                    "queue_size", "labels"}));
    SinkConfig s;
    s.line = item.Mark().line + 1;
    const bool py = static_cast<bool>(item["pyroscope"]), pa = static_cast<bool>(item["parca"]);
    if (py == pa)
      return std::unexpected(error(item, key, "expected exactly one of pyroscope: URL or "
                                              "parca: HOST:PORT"));
    if (py) {
      s.kind = SinkConfig::Kind::kPyroscope;
      LW_ASSIGN(s.endpoint, scalar(item["pyroscope"], key + ".pyroscope"));
      while (s.endpoint.ends_with('/')) s.endpoint.pop_back();
      if (!s.endpoint.starts_with("http://") && !s.endpoint.starts_with("https://"))
        return std::unexpected(error(item["pyroscope"], key + ".pyroscope",
                                     fmt::format("expected a URL such as http://pyroscope:4040, "
                                                 "got \"{}\"", s.endpoint)));
    } else {
      s.kind = SinkConfig::Kind::kParca;
      LW_ASSIGN(s.endpoint, scalar(item["parca"], key + ".parca"));
      if (s.endpoint.find("://") != std::string::npos || s.endpoint.find(':') == std::string::npos)
        return std::unexpected(error(item["parca"], key + ".parca",
                                     fmt::format("expected a gRPC address HOST:PORT such as "
                                                 "parca.monitoring:7070, got \"{}\"",
                                                 s.endpoint)));
    }
    if (auto v = item["tenant"]) LW_ASSIGN(s.tenant, scalar(v, key + ".tenant"));
    if (auto v = item["insecure"]) LW_ASSIGN(s.insecure, boolean(v, key + ".insecure"));
    if (auto v = item["bearer_token_file"])
      LW_ASSIGN(s.bearer_token_file, scalar(v, key + ".bearer_token_file"));
    if (auto v = item["timeout"]) {
      LW_ASSIGN(s.timeout_s, quantity(v, key + ".timeout", parse_duration));
      if (s.timeout_s <= 0)
        return std::unexpected(error(v, key + ".timeout", "expected a positive duration"));
    }
    if (auto v = item["max_attempts"]) {
      uint64_t a = 0;
      LW_ASSIGN(a, positive_integer(v, key + ".max_attempts"));
      s.max_attempts = static_cast<int>(std::min<uint64_t>(a, 100));
    }
    if (auto v = item["backoff"]) LW_ASSIGN(s.backoff_s, quantity(v, key + ".backoff",
                                                                   parse_duration));
    if (auto v = item["queue_size"]) {
      uint64_t q = 0;
      LW_ASSIGN(q, positive_integer(v, key + ".queue_size"));
      s.queue_size = static_cast<size_t>(std::min<uint64_t>(q, 1024));
    }
    if (auto v = item["labels"]) {
      if (!v.IsMap())
        return std::unexpected(error(v, key + ".labels", "expected a mapping of label: value"));
      for (auto it = v.begin(); it != v.end(); ++it)
        s.labels[it->first.Scalar()] = it->second.Scalar();
    }
    c.sinks.push_back(std::move(s));
  }
  return {};
}

// Notes whether a document has content (anything but an empty node) and where it starts.
class DocumentContent : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override { content.reset(); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { seen(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    seen(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    seen(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    seen(mark);
  }
  void OnMapEnd() override {}

  std::optional<YAML::Mark> content;  // where the document's first node is

 private:
  void seen(const YAML::Mark& mark) {
    if (!content) content = mark;
  }
};

// The first document after the first that has content, as (its number, its line).  Read
// through the parser's events, a bounded number of documents: yaml-cpp 0.7's LoadAll never
// returns on some malformed input (",&" and a byte that is not UTF-8, found by the
// agent_config fuzzer).
std::optional<std::pair<int, int>> second_document(const std::string& text) {
  constexpr int kMaxDocuments = 1000;
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentContent doc;
  for (int i = 0; i < kMaxDocuments && parser.HandleNextDocument(doc); ++i)
    if (i > 0 && doc.content)
      return std::pair{i + 1, doc.content->is_null() ? 0 : doc.content->line + 1};
  return std::nullopt;
}

}  // namespace

Result<AgentConfig> parse_config(std::string_view yaml_text, std::string_view source) {
  Parser parser(source);
  try {
    // YAML::Load reads the first document only: a second one ("---" and more keys) would
    // be ignored without a word.
    const std::string text(yaml_text);
    if (auto second = second_document(text))
      return fail("{}:{}: (document {}) a second YAML document: the configuration is one "
                  "document (remove the '---' line)",
                  source, second->second, second->first);
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull())
      return fail("{}: empty configuration (at least 'targets' is needed)", source);
    if (auto d = parser.check_duplicate_keys(root, ""); !d) return std::unexpected(d.error());
    return parser.parse(root);
  } catch (const YAML::Exception& e) {
    // Syntax errors and type mismatches inside yaml-cpp carry their own position.
    int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    // An unquoted ">5MB/min" is a YAML folded-block indicator: say so.
    const char* hint = e.msg.find("block scalar") != std::string::npos
                           ? " (quote values that start with '>', e.g. \">5MB/min\")"
                           : "";
    return fail("{}:{}: invalid YAML: {}{}", source, line, e.msg, hint);
  }
}

Result<AgentConfig> load_config(const std::string& path) {
  auto text = read_file(path);
  if (!text) return fail("cannot read configuration {}: {}", path, text.error().message);
  if (text->size() > kMaxConfigBytes)
    return fail("{}: {} bytes: a configuration is at most {} bytes", path, text->size(),
                kMaxConfigBytes);
  return parse_config(*text, path);
}

}  // namespace leakwatch::agent
