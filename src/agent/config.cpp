#include "agent/config.h"

#include <algorithm>
#include <charconv>
#include <initializer_list>

#include <fmt/format.h>
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

  Result<Threshold> threshold(const YAML::Node& n, const std::string& key,
                              QuantityParser p) const {
    auto s = scalar(n, key);
    if (!s) return std::unexpected(s.error());
    auto t = parse_threshold(*s, p);
    if (!t) return std::unexpected(error(n, key, t.error().message));
    return *t;
  }

  Result<uint64_t> positive_integer(const YAML::Node& n, const std::string& key) const {
    auto s = scalar(n, key);
    if (!s) return std::unexpected(s.error());
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || end != s->data() + s->size() || v == 0)
      return std::unexpected(
          error(n, key, fmt::format("expected a positive integer, got \"{}\"", *s)));
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

  std::string source_;
};

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

Result<AgentConfig> Parser::parse(const YAML::Node& root) const {
  AgentConfig c;
  if (!root.IsMap()) return std::unexpected(error(root, "(top level)", "expected a mapping"));
  LW_CHECK(check_keys(root, "",
                      {"listen", "reports_dir", "environment", "targets", "memleak_sampling",
                       "overhead_budget_percent", "detection", "reports"}));
  if (auto n = root["listen"]) {
    LW_ASSIGN(c.listen, scalar(n, "listen"));
    if (c.listen == "off") c.listen.clear();
    if (!c.listen.empty()) {
      auto a = parse_listen(c.listen);
      if (!a) return std::unexpected(error(n, "listen", a.error().message));
    }
  }
  if (auto n = root["reports_dir"]) {
    LW_ASSIGN(c.reports_dir, scalar(n, "reports_dir"));
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
  return c;
}

Result<void> Parser::parse_targets(const YAML::Node& n, AgentConfig& c) const {
  if (!n.IsSequence() || n.size() == 0)
    return std::unexpected(error(n, "targets", "expected a non-empty list of targets"));
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node t = n[i];
    std::string key = fmt::format("targets[{}]", i);
    LW_CHECK(check_keys(t, key, {"comm", "pid", "cgroup", "all"}));
    if (t.size() != 1)
      return std::unexpected(
          error(t, key, "expected exactly one of comm, pid, cgroup or all in each target"));
    TargetSpec spec;
    spec.line = t.Mark().line + 1;
    if (auto v = t["comm"]) {
      spec.kind = TargetSpec::Kind::kComm;
      LW_ASSIGN(spec.comm, scalar(v, key + ".comm"));
      if (spec.comm.empty())
        return std::unexpected(error(v, key + ".comm", "expected a process name"));
    } else if (auto v = t["pid"]) {
      spec.kind = TargetSpec::Kind::kPid;
      uint64_t pid = 0;
      LW_ASSIGN(pid, positive_integer(v, key + ".pid"));
      if (pid > 0x3fffffff)  // PID_MAX_LIMIT
        return std::unexpected(error(v, key + ".pid", "expected a process id"));
      spec.pid = static_cast<int>(pid);
    } else if (auto v = t["cgroup"]) {
      spec.kind = TargetSpec::Kind::kCgroup;
      LW_ASSIGN(spec.cgroup, scalar(v, key + ".cgroup"));
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
  if (auto v = n["cooldown"]) LW_ASSIGN(m.cooldown_s, quantity(v, path + ".cooldown",
                                                                parse_duration));
  if (auto v = n["max_concurrent"]) {
    uint64_t mc = 0;
    LW_ASSIGN(mc, positive_integer(v, path + ".max_concurrent"));
    m.max_concurrent = static_cast<int>(std::min<uint64_t>(mc, 64));
  }
  if (auto s = n["sampling_config"]) {
    const std::string sp = path + ".sampling_config";
    LW_CHECK(check_keys(s, sp, {"default_sample_rate", "aggressive_sample_rate",
                                "duration_limit", "growth_seconds", "inject"}));
    SamplingConfig& sc = m.sampling_config;
    if (auto v = s["default_sample_rate"])
      LW_ASSIGN(sc.default_sample_rate, positive_integer(v, sp + ".default_sample_rate"));
    if (auto v = s["aggressive_sample_rate"])
      LW_ASSIGN(sc.aggressive_sample_rate, positive_integer(v, sp + ".aggressive_sample_rate"));
    if (auto v = s["duration_limit"]) {
      LW_ASSIGN(sc.duration_limit_s, quantity(v, sp + ".duration_limit", parse_duration));
      if (sc.duration_limit_s <= 0)
        return std::unexpected(error(v, sp + ".duration_limit", "expected a positive duration"));
    }
    // Durations never parse negative; 0 turns the growth step off.
    if (auto v = s["growth_seconds"])
      LW_ASSIGN(sc.growth_seconds, quantity(v, sp + ".growth_seconds", parse_duration));
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
    } else if (name == "rss_increase_threshold") {
      LW_ASSIGN(t.rss_increase_threshold, threshold(v, key, parse_size));
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
                             "read_smaps"}));
  struct Field {
    const char* key;
    double* dst;
    QuantityParser parse;
    bool allow_zero;
  };
  const Field fields[] = {
      {"interval", &d.interval_s, parse_duration, false},
      {"rate_window", &d.rate_window_s, parse_duration, false},
      {"sustained_for", &d.sustained_for_s, parse_duration, true},
      {"baseline_window", &d.baseline_window_s, parse_duration, true},
      {"sigma", &d.sigma, parse_number, true},
      {"min_spread", &d.min_spread_bytes_per_s, parse_rate, true},
      {"oom_horizon", &d.oom_horizon_s, parse_duration, false},
      {"warmup_grace", &d.warmup_grace_s, parse_duration, true},
  };
  for (const Field& f : fields) {
    auto v = n[f.key];
    if (!v) continue;
    LW_ASSIGN(*f.dst, quantity(v, p + "." + f.key, f.parse));
    if (!f.allow_zero && *f.dst <= 0)
      return std::unexpected(error(v, p + "." + f.key, "expected a value above zero"));
  }
  if (auto v = n["read_smaps"]) LW_ASSIGN(d.read_smaps, boolean(v, p + ".read_smaps"));
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
    LW_ASSIGN(c, positive_integer(v, "reports.max_count"));
    r.max_count = static_cast<size_t>(c);
  }
  if (auto v = n["max_age"]) {
    LW_ASSIGN(r.max_age_s, quantity(v, "reports.max_age", parse_duration));
    if (r.max_age_s <= 0)
      return std::unexpected(error(v, "reports.max_age", "expected a positive duration"));
  }
  return {};
}

}  // namespace

Result<AgentConfig> parse_config(std::string_view yaml_text, std::string_view source) {
  Parser parser(source);
  try {
    YAML::Node root = YAML::Load(std::string(yaml_text));
    if (!root || root.IsNull())
      return fail("{}: empty configuration (at least 'targets' is needed)", source);
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
  return parse_config(*text, path);
}

}  // namespace leakwatch::agent
