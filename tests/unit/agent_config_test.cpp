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
  EXPECT_EQ(m.sampling_config.default_sample_rate, 1000u);
  EXPECT_EQ(m.sampling_config.aggressive_sample_rate, 100u);
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
       "unknown key (expected one of: default_sample_rate, aggressive_sample_rate, "
       "duration_limit, growth_seconds, inject)"},
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
