// Agent configuration: units, the issue's block verbatim, the example file, bad files.
#include <gtest/gtest.h>

#include <string>

#include <yaml-cpp/yaml.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/units.h"
#include "agent_loop_testing.h"
#include "common/atomic_file.h"

namespace leakwatch::agent {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;

TEST(AgentUnits, Sizes) {
  EXPECT_DOUBLE_EQ(parse_size("100MB").value(), 100e6);
  EXPECT_DOUBLE_EQ(parse_size("64 KiB").value(), 65536);
  EXPECT_DOUBLE_EQ(parse_size("1.5GB").value(), 1.5e9);
  EXPECT_DOUBLE_EQ(parse_size("2Gi").value(), 2 * 1073741824.0);
  EXPECT_DOUBLE_EQ(parse_size("4096").value(), 4096);
  EXPECT_DOUBLE_EQ(parse_size("1kb").value(), 1000);
  EXPECT_DOUBLE_EQ(parse_size("3 MiB").value(), 3 * kMiB);
  for (const char* bad : {"", "MB", "-5MB", "5 parsecs", "5MB/min", "nan"}) {
    auto r = parse_size(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().message.find("expected a size"), std::string::npos);
    }
  }
}

TEST(AgentUnits, Rates) {
  EXPECT_DOUBLE_EQ(parse_rate("5MB/min").value(), 5e6 / 60);
  EXPECT_DOUBLE_EQ(parse_rate("1MiB/s").value(), kMiB);
  EXPECT_DOUBLE_EQ(parse_rate("2GB/hour").value(), 2e9 / 3600);
  EXPECT_DOUBLE_EQ(parse_rate("100 KB / sec").value(), 1e5);
  EXPECT_DOUBLE_EQ(parse_rate("1KiB/h").value(), 1024.0 / 3600);
  for (const char* bad : {"5MB", "5MB/fortnight", "/min", "fast"}) EXPECT_FALSE(parse_rate(bad));
}

TEST(AgentUnits, Durations) {
  EXPECT_DOUBLE_EQ(parse_duration("300").value(), 300);
  EXPECT_DOUBLE_EQ(parse_duration("500ms").value(), 0.5);
  EXPECT_DOUBLE_EQ(parse_duration("5min").value(), 300);
  EXPECT_DOUBLE_EQ(parse_duration("5m").value(), 300);
  EXPECT_DOUBLE_EQ(parse_duration("2h").value(), 7200);
  EXPECT_DOUBLE_EQ(parse_duration("7d").value(), 7 * 86400);
  EXPECT_FALSE(parse_duration("5 fortnights"));
}

TEST(AgentUnits, Thresholds) {
  auto t = parse_threshold(">5MB/min", parse_rate).value();
  EXPECT_EQ(t.op, Comparison::kGreater);
  EXPECT_DOUBLE_EQ(t.value, 5e6 / 60);
  EXPECT_TRUE(t.holds(5e6 / 60 + 1));
  EXPECT_FALSE(t.holds(5e6 / 60));
  auto ge = parse_threshold(">= 0.7", parse_number).value();
  EXPECT_EQ(ge.op, Comparison::kGreaterEqual);
  EXPECT_TRUE(ge.holds(0.7));
  auto bare = parse_threshold("100MB", parse_size).value();
  EXPECT_EQ(bare.op, Comparison::kGreaterEqual);
  auto lt = parse_threshold("<5MB", parse_size);
  ASSERT_FALSE(lt);
  EXPECT_NE(lt.error().message.find("'>'"), std::string::npos);
}

TEST(AgentUnits, Formatting) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1.5 * kMiB), "1.5 MiB");
  EXPECT_EQ(format_rate(kMiB / 60), "+1.0 MiB/min");
  EXPECT_EQ(format_rate(2 * kMiB), "+2.0 MiB/s");
  EXPECT_EQ(format_duration(245), "4m05s");
  EXPECT_EQ(format_duration(3 * 3600 + 120), "3h02m");
}

// The block from issue 4, verbatim (the shape used for BCC memleak deployments).
constexpr const char* kIssueBlock = R"(listen: 127.0.0.1:9464
reports_dir: ./leakwatch-reports
environment: production        # production|staging|development|ci
targets:
  - comm: myservice            # or pid: 1234, or cgroup: /sys/fs/cgroup/..., or all: true
memleak_sampling:
  enabled: true
  trigger_conditions:
    - memory_growth_rate: ">5MB/min"
    - rss_increase_threshold: ">100MB"
    - oom_risk_score: ">0.7"
  sampling_config:
    default_sample_rate: 1000
    aggressive_sample_rate: 100   # used when oom risk is high
    duration_limit: 300           # seconds; capped by environment: 300/900/1800/600
overhead_budget_percent: 10
)";

TEST(AgentConfig, AcceptsTheIssueBlock) {
  auto c = parse_config(kIssueBlock, "issue.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->listen, "127.0.0.1:9464");
  EXPECT_EQ(c->reports_dir, "./leakwatch-reports");
  EXPECT_EQ(c->environment, Environment::kProduction);
  ASSERT_EQ(c->targets.size(), 1u);
  EXPECT_EQ(c->targets[0].kind, TargetSpec::Kind::kComm);
  EXPECT_EQ(c->targets[0].comm, "myservice");
  EXPECT_EQ(c->targets[0].line, 5);
  EXPECT_EQ(c->targets[0].label(), "comm:myservice");
  const auto& m = c->memleak_sampling;
  EXPECT_TRUE(m.enabled);
  ASSERT_TRUE(m.trigger_conditions.memory_growth_rate);
  EXPECT_DOUBLE_EQ(m.trigger_conditions.memory_growth_rate->value, 5e6 / 60);
  ASSERT_TRUE(m.trigger_conditions.rss_increase_threshold);
  EXPECT_DOUBLE_EQ(m.trigger_conditions.rss_increase_threshold->value, 100e6);
  ASSERT_TRUE(m.trigger_conditions.oom_risk_score);
  EXPECT_DOUBLE_EQ(m.trigger_conditions.oom_risk_score->value, 0.7);
  EXPECT_EQ(m.sampling_config.default_sampling,
            (report::Sampling{report::SamplingMode::kCalls, 1000}));
  EXPECT_EQ(m.sampling_config.aggressive_sampling,
            (report::Sampling{report::SamplingMode::kCalls, 100}));
  EXPECT_DOUBLE_EQ(m.sampling_config.duration_limit_s, 300);
  EXPECT_DOUBLE_EQ(c->overhead_budget_percent, 10);
  EXPECT_DOUBLE_EQ(c->investigation_duration_s(), 300);
}

TEST(AgentConfig, EnvironmentCapsTheDuration) {
  std::string base = std::string(kIssueBlock);
  auto with = [&](const std::string& env, const std::string& limit) {
    std::string y = base;
    y.replace(y.find("production"), 10, env);
    y.replace(y.find("duration_limit: 300"), 19, "duration_limit: " + limit);
    auto c = parse_config(y);
    EXPECT_TRUE(c) << c.error().message;
    return c ? c->investigation_duration_s() : -1;
  };
  EXPECT_DOUBLE_EQ(with("production", "3600"), 300);
  EXPECT_DOUBLE_EQ(with("staging", "3600"), 900);
  EXPECT_DOUBLE_EQ(with("development", "3600"), 1800);
  EXPECT_DOUBLE_EQ(with("ci", "3600"), 600);
  EXPECT_DOUBLE_EQ(with("ci", "2min"), 120);  // below the cap: as configured
}

TEST(AgentConfig, TheExampleFileParses) {
  auto c = load_config(std::string(LEAKWATCH_SOURCE_DIR) + "/deploy/leakwatch.example.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->targets.size(), 1u);
  EXPECT_DOUBLE_EQ(c->memleak_sampling.cooldown_s, 1800);
  EXPECT_DOUBLE_EQ(c->memleak_sampling.sampling_config.growth_seconds, 30);
  EXPECT_EQ(c->memleak_sampling.sampling_config.default_sampling,
            (report::Sampling{report::SamplingMode::kBytes, 512 * 1024}));
  EXPECT_EQ(c->memleak_sampling.sampling_config.aggressive_sampling,
            (report::Sampling{report::SamplingMode::kBytes, 128 * 1024}));
  EXPECT_EQ(c->memleak_sampling.sampling_config.inject, InjectPolicy::kOverBudget);
  EXPECT_DOUBLE_EQ(c->detection.rate_window_s, 120);
  EXPECT_DOUBLE_EQ(c->detection.sustained_for_s, 300);
  EXPECT_DOUBLE_EQ(c->detection.min_spread_bytes_per_s, 1024);
  EXPECT_EQ(c->reports.max_count, 100u);
  EXPECT_DOUBLE_EQ(c->reports.max_age_s, 7 * 86400);
}

TEST(AgentConfig, InjectPolicy) {
  auto with = [](const std::string& value) {
    return parse_config("targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
                        "    inject: " + value + "\n");
  };
  EXPECT_EQ(parse_config("targets:\n  - comm: x\n")->memleak_sampling.sampling_config.inject,
            InjectPolicy::kNever);
  EXPECT_EQ(with("never")->memleak_sampling.sampling_config.inject, InjectPolicy::kNever);
  EXPECT_EQ(with("over_budget")->memleak_sampling.sampling_config.inject, InjectPolicy::kOverBudget);
  EXPECT_EQ(with("always")->memleak_sampling.sampling_config.inject, InjectPolicy::kAlways);
  auto bad = with("sometimes");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(
                "memleak_sampling.sampling_config.inject: expected never, over_budget or always"),
            std::string::npos)
      << bad.error().message;
}

TEST(AgentConfig, GrowthStepTakesAtMostHalfTheTimeBox) {
  auto with = [](const std::string& sampling) {
    auto c = parse_config("targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n" +
                          sampling);
    EXPECT_TRUE(c) << c.error().message;
    return c ? c->growth_step_s() : -1;
  };
  EXPECT_DOUBLE_EQ(with("    duration_limit: 300\n"), 30);  // the default
  EXPECT_DOUBLE_EQ(with("    growth_seconds: 45s\n"), 45);
  EXPECT_DOUBLE_EQ(with("    growth_seconds: 2min\n"), 120);
  EXPECT_DOUBLE_EQ(with("    growth_seconds: 0\n"), 0);  // no growth step
  EXPECT_DOUBLE_EQ(with("    growth_seconds: 200\n"), 150);  // half of production's 300
  EXPECT_DOUBLE_EQ(with("    duration_limit: 40\n"), 20);
  EXPECT_DOUBLE_EQ(with("    duration_limit: 4\n    growth_seconds: 2\n"), 2);
}

// The example configuration in README.md's agent section (the indented block that starts
// with "# leakwatch.yaml"), as a user would copy it: it parses, and an agent starts on it
// and evaluates (what `leakwatch agent --config leakwatch.yaml --once` does).
TEST(AgentConfig, TheReadmeExampleWorks) {
  const std::string readme = read_file(std::string(LEAKWATCH_SOURCE_DIR) + "/README.md").value();
  const size_t section = readme.find("\n## leakwatch agent\n");
  ASSERT_NE(section, std::string::npos) << "README.md has no agent section";
  const size_t next_section = readme.find("\n## ", section + 1);
  size_t at = readme.find("\n    # leakwatch.yaml\n", section);
  ASSERT_LT(at, next_section) << "no example configuration in the agent section";
  std::string yaml;
  for (++at; at < readme.size();) {
    size_t eol = readme.find('\n', at);
    std::string line = readme.substr(at, eol - at);
    if (!line.empty() && !line.starts_with("    ")) break;
    yaml += (line.empty() ? line : line.substr(4)) + "\n";
    at = eol + 1;
  }
  auto c = parse_config(yaml, "README.md");
  ASSERT_TRUE(c) << c.error().message << "\n" << yaml;
  EXPECT_TRUE(c->memleak_sampling.enabled);
  EXPECT_GT(c->growth_step_s(), 0);
  EXPECT_LE(c->growth_step_s(), c->investigation_duration_s() / 2);
  ASSERT_FALSE(c->targets.empty());

  TempDir tmp;
  c->reports_dir = tmp.path() + "/reports";  // not the working directory of the test
  auto agent = Agent::create(*c, AgentOptions{});
  ASSERT_TRUE(agent) << agent.error().message;
  (*agent)->tick();
  EXPECT_FALSE((*agent)->status_lines().empty());
}

TEST(AgentConfig, TheDaemonSetConfigMapParses) {
  // The configuration shipped inside deploy/daemonset.yaml's ConfigMap.
  auto docs = YAML::LoadAllFromFile(std::string(LEAKWATCH_SOURCE_DIR) + "/deploy/daemonset.yaml");
  std::string embedded;
  for (const YAML::Node& d : docs)
    if (d["kind"].as<std::string>() == "ConfigMap")
      embedded = d["data"]["leakwatch.yaml"].as<std::string>();
  ASSERT_FALSE(embedded.empty());
  auto c = parse_config(embedded, "daemonset.yaml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->targets.at(0).kind, TargetSpec::Kind::kAll);
  EXPECT_EQ(c->listen, "0.0.0.0:9464");
  EXPECT_DOUBLE_EQ(c->memleak_sampling.cooldown_s, 3600);
  EXPECT_EQ(c->kubernetes.log_dir, "/host/var/log");
  ASSERT_EQ(c->sinks.size(), 1u);
  EXPECT_EQ(c->sinks[0].kind, SinkConfig::Kind::kPyroscope);
  EXPECT_EQ(c->detection.read_smaps, DetectionConfig::Smaps::kSuspects);
}

TEST(AgentConfig, AllTargetKinds) {
  auto c = parse_config(R"(targets:
  - comm: a
  - pid: 42
  - cgroup: /sys/fs/cgroup/x.slice/
  - all: true
listen: "off"
)");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->targets.size(), 4u);
  EXPECT_EQ(c->targets[1].pid, 42);
  EXPECT_EQ(c->targets[2].cgroup, "/sys/fs/cgroup/x.slice");
  EXPECT_EQ(c->targets[3].label(), "all");
  EXPECT_TRUE(c->listen.empty());
  EXPECT_FALSE(c->memleak_sampling.enabled);  // no memleak_sampling block: watch only
}

// Each bad file must be rejected with the line, the key and what was expected.
struct BadCase {
  const char* yaml;
  const char* line;      // "FILE:N:"
  const char* key;
  const char* expected;  // a fragment of the explanation
};

TEST(AgentConfig, BadFilesNameLineKeyAndExpectation) {
  const std::string long_comm = "targets:\n  - comm: " + std::string(5000, 'a') + "\n";
  const BadCase cases[] = {
      {"targets:\n  - comm: x\nmemleak_sampling:\n  trigger_conditions:\n"
       "    - memory_growth_rate: \"fast\"\n",
       "bad.yaml:5:", "memleak_sampling.trigger_conditions.memory_growth_rate",
       "expected a rate such as 5MB/min"},
      {"targets:\n  - comm: x\nenvironment: prod\n", "bad.yaml:3:", "environment",
       "expected production, staging, development or ci"},
      {"targets:\n  - comm: x\nlisten: 9464\n", "bad.yaml:3:", "listen", "expected HOST:PORT"},
      {"targets:\n  - comm: x\nlisen: 127.0.0.1:1\n", "bad.yaml:3:", "lisen", "unknown key"},
      {"targets:\n  - pid: -3\n", "bad.yaml:2:", "targets[0].pid", "positive integer"},
      {"targets:\n  - pid: 1\n    comm: x\n", "bad.yaml:2:", "targets[0]", "exactly one of"},
      {"targets:\n  - cgroup: system.slice\n", "bad.yaml:2:", "targets[0].cgroup", "absolute"},
      {"targets: []\n", "bad.yaml:1:", "targets", "non-empty list"},
      {"listen: 127.0.0.1:1\n", "bad.yaml:1:", "targets", "missing"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    default_sample_rate: lots\n",
       "bad.yaml:5:", "memleak_sampling.sampling_config.default_sample_rate",
       "positive integer"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    duration_limit: soon\n",
       "bad.yaml:5:", "memleak_sampling.sampling_config.duration_limit", "duration"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    duration_limit: 300\n    growth_seconds: -5\n",
       "bad.yaml:6:", "memleak_sampling.sampling_config.growth_seconds",
       "expected a duration such as 300 (seconds)"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    growth_seconds: a while\n",
       "bad.yaml:5:", "memleak_sampling.sampling_config.growth_seconds", "expected a duration"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    growth_second: 30\n",
       "bad.yaml:5:", "memleak_sampling.sampling_config.growth_second",
       "unknown key (expected one of: default_sample_bytes, aggressive_sample_bytes, "
       "default_sample_rate, aggressive_sample_rate, duration_limit, growth_seconds, inject)"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    default_sample_bytes: 512KiB\n    default_sample_rate: 1000\n",
       "bad.yaml:6:", "memleak_sampling.sampling_config.default_sample_rate",
       "give default_sample_bytes (bytes) or default_sample_rate (1 in N calls), not both"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    aggressive_sample_bytes: 0\n",
       "bad.yaml:5:", "memleak_sampling.sampling_config.aggressive_sample_bytes",
       "expected a size from 1 byte to 1 TiB"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  trigger_conditions:\n"
       "    - oom_risk_score: \">1.5\"\n",
       "bad.yaml:5:", "oom_risk_score", "between 0 and 1"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  trigger_conditions:\n"
       "    - cpu_usage: \">50\"\n",
       "bad.yaml:5:", "trigger_conditions.cpu_usage", "unknown condition"},
      {"targets:\n  - comm: x\noverhead_budget_percent: 150\n", "bad.yaml:3:",
       "overhead_budget_percent", "(0, 100]"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  enabled: maybe\n", "bad.yaml:4:",
       "memleak_sampling.enabled", "true or false"},
      {"targets:\n  - comm: x\ndetection:\n  interval: 10s\n  rate_window: 20s\n",
       "bad.yaml:4:", "detection.rate_window", "3 sampling intervals"},
      {"targets:\n  - comm: [x\n", "bad.yaml:", "invalid YAML", ""},
      // Durations outside their range: a past or infinite deadline made the agent spin.
      {"targets:\n  - comm: x\ndetection:\n  interval: 1ms\n", "bad.yaml:4:",
       "detection.interval", "expected a duration from 100ms to 1h, got \"1ms\""},
      {"targets:\n  - comm: x\ndetection:\n  interval: 1e308d\n", "bad.yaml:4:",
       "detection.interval", "from 100ms to 1h"},
      {"targets:\n  - comm: x\ndetection:\n  interval: 1e-300\n", "bad.yaml:4:",
       "detection.interval", "from 100ms to 1h"},
      {"targets:\n  - comm: x\ndetection:\n  sigma: 1e308\n", "bad.yaml:4:",
       "detection.sigma", "expected a number from 0 to 100"},
      {"targets:\n  - comm: x\ndetection:\n  oom_horizon: 1e308d\n", "bad.yaml:4:",
       "detection.oom_horizon", "from 1s to 30d"},
      {"targets:\n  - comm: x\ndetection:\n  sustained_for: 1e308d\n", "bad.yaml:4:",
       "detection.sustained_for", "from 0 to 30d"},
      {"targets:\n  - comm: x\ndetection:\n  min_spread: 5000000TB/s\n", "bad.yaml:4:",
       "detection.min_spread", "from 0 to 1TB/s"},
      // Sizes take digits and a dot only: an exponent is not a size at all.
      {"targets:\n  - comm: x\ndetection:\n  min_spread: 1e300MB/s\n", "bad.yaml:4:",
       "detection.min_spread", "expected a rate"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    duration_limit: 1e-300\n",
       "bad.yaml:5:", "memleak_sampling.sampling_config.duration_limit", "from 100ms to 1d"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  sampling_config:\n"
       "    growth_seconds: 1e308d\n",
       "bad.yaml:5:", "memleak_sampling.sampling_config.growth_seconds", "to 1d"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  cooldown: 1e308d\n", "bad.yaml:4:",
       "memleak_sampling.cooldown", "from 0 to 30d"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  max_concurrent: 1000\n", "bad.yaml:4:",
       "memleak_sampling.max_concurrent", "from 1 to 64"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  trigger_conditions:\n"
       "    - memory_growth_rate: \">9999999TB/min\"\n",
       "bad.yaml:5:", "memory_growth_rate", "at most 1TB/s"},
      {"targets:\n  - comm: x\nreports:\n  max_age: 1e-300\n", "bad.yaml:4:",
       "reports.max_age", "from 1min to 3650d"},
      {"targets:\n  - comm: x\nreports:\n  max_count: 99999999999\n", "bad.yaml:4:",
       "reports.max_count", "from 1 to 1000000"},
      // Duplicate keys: yaml-cpp would keep the first silently.
      {"listen: 127.0.0.1:1\ntargets:\n  - comm: x\nlisten: 0.0.0.0:2\n", "bad.yaml:4:",
       "listen", "duplicate key (first given on line 1)"},
      {"targets:\n  - comm: x\ndetection:\n  interval: 1s\n  interval: 2s\n",
       "bad.yaml:5:", "detection.interval", "duplicate key (first given on line 4)"},
      // A second document would be ignored.
      {"targets:\n  - comm: x\n---\nlisten: 0.0.0.0:1\n", "bad.yaml:4:", "document 2",
       "a second YAML document"},
      // Over-long strings.
      {long_comm.c_str(), "bad.yaml:2:",
       "targets[0].comm", "too long: 5000 characters, at most 255"},
      {"targets:\n  - comm: x\nmemleak_sampling:\n  trigger_conditions:\n"
       "    - memory_growth_rate: >5MB/min\n",
       "bad.yaml:5:", "invalid YAML", "quote values that start with '>'"},
  };
  for (const BadCase& bc : cases) {
    auto c = parse_config(bc.yaml, "bad.yaml");
    ASSERT_FALSE(c) << bc.yaml;
    const std::string& m = c.error().message;
    EXPECT_TRUE(m.starts_with(bc.line)) << m;
    EXPECT_NE(m.find(bc.key), std::string::npos) << m;
    EXPECT_NE(m.find(bc.expected), std::string::npos) << m;
  }
}

TEST(AgentConfig, UnreadableFile) {
  auto c = load_config("/nonexistent/leakwatch.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("/nonexistent/leakwatch.yaml"), std::string::npos);
}

TEST(AgentConfig, ListenAddresses) {
  auto v4 = parse_listen("127.0.0.1:9464").value();
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 9464);
  auto v6 = parse_listen("[::1]:0").value();
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.port, 0);
  EXPECT_FALSE(parse_listen(":9464"));
  EXPECT_FALSE(parse_listen("host:99999"));
}

}  // namespace
}  // namespace leakwatch::agent

namespace leakwatch::agent {
namespace {

TEST(AgentConfig, KubernetesTargetsAndSettings) {
  auto c = parse_config(R"yaml(targets:
  - pod: shop/cart-7d9f8b6c5-x2k4q
  - namespace: shop
  - selector: "app=cart,tier in (api,web)"
  - selector: {app: cart}
kubernetes:
  log_dir: /host/var/log
  pod_manifests: /etc/leakwatch/pods.json
  refresh: 1min
node_name: node-7
)yaml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->targets.size(), 4u);
  EXPECT_EQ(c->targets[0].kind, TargetSpec::Kind::kPod);
  EXPECT_EQ(c->targets[0].label(), "pod:shop/cart-7d9f8b6c5-x2k4q");
  EXPECT_EQ(c->targets[1].label(), "namespace:shop");
  EXPECT_EQ(c->targets[2].kind, TargetSpec::Kind::kSelector);
  EXPECT_EQ(c->targets[2].selector.requirements.size(), 2u);
  EXPECT_EQ(c->targets[3].label(), "selector:app=cart");
  EXPECT_TRUE(c->targets[3].selector.matches({{"app", "cart"}}));
  EXPECT_EQ(c->kubernetes.log_dir, "/host/var/log");
  EXPECT_EQ(c->kubernetes.pod_manifests, "/etc/leakwatch/pods.json");
  EXPECT_DOUBLE_EQ(c->kubernetes.refresh_s, 60);
  EXPECT_EQ(c->node_name, "node-7");

  auto bad = parse_config("targets:\n  - selector: \"app in prod\"\n", "x.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("x.yaml:2: targets[0].selector"), std::string::npos)
      << bad.error().message;
}

TEST(AgentConfig, Sinks) {
  auto c = parse_config(R"(targets:
  - all: true
sinks:
  - pyroscope: http://pyroscope.monitoring:4040/
    tenant: team-a
    labels: {cluster: prod-eu}
  - parca: parca.monitoring:7070
    insecure: true
    bearer_token_file: /var/run/secrets/parca/token
    timeout: 5s
    max_attempts: 3
    backoff: 500ms
    queue_size: 4
)");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->sinks.size(), 2u);
  const SinkConfig& py = c->sinks[0];
  EXPECT_EQ(py.kind, SinkConfig::Kind::kPyroscope);
  EXPECT_EQ(py.endpoint, "http://pyroscope.monitoring:4040");
  EXPECT_EQ(py.tenant, "team-a");
  EXPECT_EQ(py.labels.at("cluster"), "prod-eu");
  EXPECT_EQ(py.name(), "pyroscope:http://pyroscope.monitoring:4040");
  const SinkConfig& pa = c->sinks[1];
  EXPECT_EQ(pa.kind, SinkConfig::Kind::kParca);
  EXPECT_EQ(pa.endpoint, "parca.monitoring:7070");
  EXPECT_TRUE(pa.insecure);
  EXPECT_DOUBLE_EQ(pa.timeout_s, 5);
  EXPECT_EQ(pa.max_attempts, 3);
  EXPECT_DOUBLE_EQ(pa.backoff_s, 0.5);
  EXPECT_EQ(pa.queue_size, 4u);

  for (const char* bad : {"targets: [{all: true}]\nsinks:\n  - pyroscope: pyroscope:4040\n",
                          "targets: [{all: true}]\nsinks:\n  - parca: http://parca:7070\n",
                          "targets: [{all: true}]\nsinks:\n  - pyroscope: http://a\n    parca: b:1\n",
                          "targets: [{all: true}]\nsinks:\n  - jaeger: http://a\n"}) {
    auto r = parse_config(bad);
    EXPECT_FALSE(r) << bad;
  }
}

TEST(AgentConfig, Layer1SourceAndSmapsPolicy) {
  auto d = parse_config("targets: [{all: true}]\n");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->detection.source, metrics::Layer1Source::kAuto);
  EXPECT_EQ(d->detection.read_smaps, DetectionConfig::Smaps::kSuspects);
  auto c = parse_config(R"(targets: [{all: true}]
detection:
  source: proc
  read_smaps: all
  smaps_max_rss: 512MiB
  smaps_max_cost: 20ms
)");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->detection.source, metrics::Layer1Source::kProc);
  EXPECT_EQ(c->detection.read_smaps, DetectionConfig::Smaps::kAll);
  EXPECT_DOUBLE_EQ(c->detection.smaps_max_rss, 512 * kMiB);
  EXPECT_DOUBLE_EQ(c->detection.smaps_max_cost_s, 0.02);
  // The former boolean keeps its meaning.
  auto old = parse_config("targets: [{all: true}]\ndetection:\n  read_smaps: false\n");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->detection.read_smaps, DetectionConfig::Smaps::kOff);
  EXPECT_FALSE(parse_config("targets: [{all: true}]\ndetection:\n  source: ebpf\n"));
}

}  // namespace
}  // namespace leakwatch::agent
