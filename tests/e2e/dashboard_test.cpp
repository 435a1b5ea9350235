// deploy/grafana-dashboard.json against a running agent: every query (panels and template
// variables) names only metrics a real /metrics scrape of the agent contains, and every
// query parses as PromQL (Debian's promtool, when installed).
//
// The agent runs in this process with its HTTP server, watching a real process (pid
// target), a cgroup target and a profile sink, so that every family the dashboard uses is
// exported.  The cgroup is a directory laid out as cgroup v2 with files the test writes
// (this host binds the memory controller to cgroup v1: tests/data/proc/cgroup_v2).
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "../unit/agent_loop_testing.h"
#include "../unit/agent_testing.h"
#include "agent/agent.h"
#include "agent/http_server.h"
#include "common/atomic_file.h"
#include "support/process.h"
#include "support/profile_servers.h"

namespace leakwatch::agent {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct Query {
  std::string where;  // panel title or variable name
  std::string expr;
};

void collect_panels(const json& panels, std::vector<Query>& out) {
  for (const json& p : panels) {
    if (p.contains("panels")) collect_panels(p["panels"], out);  // rows
    for (const json& t : p.value("targets", json::array()))
      if (t.contains("expr")) out.push_back({p.value("title", "?"), t["expr"].get<std::string>()});
  }
}

std::vector<Query> dashboard_queries(const json& d) {
  std::vector<Query> out;
  collect_panels(d.at("panels"), out);
  for (const json& v : d.at("templating").at("list")) {
    if (v.value("type", "") != "query") continue;
    const json& q = v.at("query");
    std::string text = q.is_string() ? q.get<std::string>() : q.value("query", "");
    // label_values(METRIC{...}, label): the metric selector is what must exist.
    std::smatch m;
    if (std::regex_search(text, m, std::regex(R"(label_values\((.*),\s*\w+\)$)")))
      text = m[1].str();
    out.push_back({"$" + v.value("name", "?"), text});
  }
  return out;
}

// Metric names in a query: identifiers outside label matchers and strings that are not
// PromQL keywords or functions.  Every one of them must be a leakwatch metric.
std::set<std::string> metric_names(const std::string& expr) {
  static const std::set<std::string> kWords{
      "sum", "max", "min", "avg", "count", "topk", "bottomk", "by", "without", "on",
      "ignoring", "group_left", "group_right", "rate", "increase", "irate", "delta",
      "and", "or", "unless", "bool", "offset", "Inf", "NaN", "histogram_quantile",
      "label_replace", "clamp_min", "clamp_max", "abs", "time", "vector", "scalar"};
  std::string plain;
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i < expr.size(); ++i) {
    char c = expr[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      plain += ' ';
      continue;
    }
    if (c == '"') { quoted = true; plain += ' '; continue; }
    if (c == '{') ++depth;
    if (c == '[') ++depth;
    plain += depth > 0 ? ' ' : c;
    if (c == '}' || c == ']') --depth;
  }
  // Grouping labels: by (...), without (...), on (...), group_left (...)
  plain = std::regex_replace(plain, std::regex(R"(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))"), " ");
  std::set<std::string> out;
  std::regex ident(R"([A-Za-z_:][A-Za-z0-9_:]*)");
  for (std::sregex_iterator it(plain.begin(), plain.end(), ident), end; it != end; ++it) {
    const std::string w = it->str();
    const size_t after = static_cast<size_t>(it->position() + it->length());
    size_t k = after;
    while (k < plain.size() && plain[k] == ' ') ++k;
    const bool is_call = k < plain.size() && plain[k] == '(';
    if (kWords.contains(w) || is_call) continue;
    out.insert(w);
  }
  return out;
}

std::set<std::string> exported(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    out.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return out;
}

TEST(GrafanaDashboard, QueryParserFindsMetricNames) {
  EXPECT_EQ(metric_names("sum by (target) (rate(leakwatch_a_total{x=\"leakwatch_no\"}[5m]))"),
            (std::set<std::string>{"leakwatch_a_total"}));
  EXPECT_EQ(metric_names("100 * leakwatch_b / on (instance) group_left leakwatch_c < +Inf"),
            (std::set<std::string>{"leakwatch_b", "leakwatch_c"}));
  EXPECT_EQ(metric_names("topk(10, node_memory_x)"), (std::set<std::string>{"node_memory_x"}));
}

TEST(GrafanaDashboard, EveryQueryNamesAMetricTheAgentExports) {
  auto text = read_file(std::string(LEAKWATCH_SOURCE_DIR) + "/deploy/grafana-dashboard.json");
  ASSERT_TRUE(text) << text.error().message;
  json dash = json::parse(*text);
  const std::vector<Query> queries = dashboard_queries(dash);
  ASSERT_GT(queries.size(), 20u);
  std::set<std::string> wanted;
  for (const Query& q : queries) {
    auto names = metric_names(q.expr);
    EXPECT_FALSE(names.empty()) << q.where << ": " << q.expr;
    for (const std::string& n : names) {
      EXPECT_TRUE(n.starts_with("leakwatch_")) << q.where << ": " << n << " in " << q.expr;
      wanted.insert(n);
    }
  }

  // A running agent: a growing process, a cgroup growing towards its limit, a sink.
  testing::ChildProcess child({testing::fixture("agent_grower"), "leak", "1024"});
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  const std::string root = tmp.path() + "/cgroup";
  const std::string svc = root + "/system.slice/svc.service";
  fs::create_directories(svc);
  const std::string data = std::string(LEAKWATCH_TEST_DATA) + "/proc/cgroup_v2/";
  for (const char* f : {"memory.max", "memory.events", "memory.pressure"})
    fs::copy_file(data + f, svc + "/" + f);
  ASSERT_TRUE(write_file_atomic(root + "/system.slice/memory.max", "max\n"));
  ASSERT_TRUE(write_file_atomic(svc + "/cgroup.procs", std::to_string(child.pid()) + "\n"));
  uint64_t anon = 100'000'000;
  auto write_usage = [&] {
    (void)write_file_atomic(svc + "/memory.stat",
                            "anon " + std::to_string(anon) + "\nfile 1000000\n");
    (void)write_file_atomic(svc + "/memory.current", std::to_string(anon + 1'000'000));
  };
  write_usage();
  auto pyroscope = testing::start_pyroscope_server();

  AgentConfig c = fast_config(tmp.path() + "/reports");
  c.memleak_sampling.enabled = false;
  c.targets.push_back({TargetSpec::Kind::kPid, "", child.pid(), "", 1});
  c.targets.push_back({TargetSpec::Kind::kCgroup, "", 0, svc, 2});
  c.sinks.emplace_back();
  c.sinks[0].endpoint = "http://127.0.0.1:" + std::to_string(pyroscope->port());
  AgentOptions o;
  o.cgroup_root = root;
  auto agent = Agent::create(c, o);
  ASSERT_TRUE(agent) << agent.error().message;
  auto server = HttpServer::start({"127.0.0.1", 0}, **agent);
  ASSERT_TRUE(server) << server.error().message;
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    while (!stop) {
      anon += 5'000'000;
      write_usage();
      (*agent)->tick();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  httplib::Client http("127.0.0.1", (*server)->port());
  std::set<std::string> have, missing;
  for (int i = 0; i < 150; ++i) {  // growth rates need a few samples
    auto r = http.Get("/metrics");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    have = exported(r->body);
    missing.clear();
    for (const std::string& n : wanted)
      if (!have.contains(n)) missing.insert(n);
    if (missing.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  ticker.join();
  for (const std::string& n : missing) ADD_FAILURE() << "the dashboard uses " << n
                                                     << ", which the agent does not export";
}

TEST(GrafanaDashboard, EveryQueryParsesAsPromQL) {
  const char* promtool = "/usr/bin/promtool";
  if (::access(promtool, X_OK) != 0) GTEST_SKIP() << promtool << " not installed";
  auto text = read_file(std::string(LEAKWATCH_SOURCE_DIR) + "/deploy/grafana-dashboard.json");
  ASSERT_TRUE(text);
  std::vector<Query> queries = dashboard_queries(json::parse(*text));
  // Grafana's variables as Prometheus would receive them.
  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  int n = 0;
  for (Query& q : queries) {
    std::string e = std::regex_replace(q.expr, std::regex(R"(\$__rate_interval)"), "1m");
    e = std::regex_replace(e, std::regex(R"(\$(instance|target|namespace))"), ".*");
    rules += "      - record: dashboard_query_" + std::to_string(n++) + "\n        expr: " +
             json(e).dump() + "\n";
  }
  const std::string file = testing::temp_path("dashboard_rules.yml");
  ASSERT_TRUE(write_file_atomic(file, rules));
  auto r = testing::run_argv({promtool, "check", "rules", file});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace leakwatch::agent
