// Profile sinks against in-repo servers that speak Pyroscope's push API and Parca's gRPC
// WriteRaw and decode what they receive (tests/support/profile_servers.h): the labels, the
// pprof inside, retries with backoff, rejections, drops; and the agent pushing a stored
// investigation's profiles with its labels.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "agent/agent.h"
#include "agent/sink_profiles.h"
#include "agent_loop_testing.h"
#include "agent_testing.h"
#include "report/pprof_writer.h"
#include "sink/sinks.h"
#include "support/process.h"
#include "support/profile_servers.h"

namespace leakwatch::sink {
namespace {

using leakwatch::testing::ProfileServer;
using leakwatch::testing::ReceivedProfile;

// A real profile: what the allocation trace writes.
Profile sample_profile(const std::string& id) {
  report::Report r;
  r.target.pid = 4242;
  r.target.comm = "cart-server";
  r.final = true;
  r.timestamp_unix_ms = 1'795'424'959'130;
  report::StackReport s;
  report::Frame f1, f2;
  f1.function = "Cart::add(Item const&)";
  f1.address = 0x401000;
  f1.module = "cart-server";
  f2.function = "main";
  f2.address = 0x400800;
  f2.module = "cart-server";
  s.frames = {f1, f2};
  s.bytes = {4096, 4096, 4096, 4096};
  s.count = {16, 16, 16, 16};
  s.verdict = report::Verdict::kLeak;
  r.stacks.push_back(s);
  Profile p;
  p.labels = {{"__name__", "leakwatch_allocations"}, {"service_name", "shop/cart-server"},
              {"pid", "4242"}, {"verdict", "leak"}};
  p.pprof_gz = report::write_pprof(r).value();
  p.id = id;
  return p;
}

SinkConfig pyroscope_at(int port) {
  SinkConfig c;
  c.kind = SinkConfig::Kind::kPyroscope;
  c.endpoint = "http://127.0.0.1:" + std::to_string(port);
  c.backoff_s = 0.02;
  c.timeout_s = 5;
  return c;
}

SinkConfig parca_at(int port) {
  SinkConfig c;
  c.kind = SinkConfig::Kind::kParca;
  c.endpoint = "127.0.0.1:" + std::to_string(port);
  c.insecure = true;
  c.backoff_s = 0.02;
  c.timeout_s = 5;
  return c;
}

void expect_decoded(const ReceivedProfile& r) {
  ASSERT_TRUE(r.gzipped);
  ASSERT_TRUE(r.parsed);
  auto types = r.sample_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "inuse_space/bytes"), types.end());
  auto fns = r.function_names();
  EXPECT_NE(std::find(fns.begin(), fns.end(), "Cart::add(Item const&)"), fns.end());
  EXPECT_EQ(r.profile.time_nanos(), 1'795'424'959'130 * 1'000'000);
  EXPECT_EQ(r.label("__name__"), "leakwatch_allocations");
  EXPECT_EQ(r.label("service_name"), "shop/cart-server");
  EXPECT_EQ(r.label("verdict"), "leak");
  EXPECT_EQ(r.label("cluster"), "eu-1");  // the sink's own labels are appended
}

TEST(Sinks, BothStoresReceiveTheProfileWithItsLabels) {
  auto py = leakwatch::testing::start_pyroscope_server();
  auto pa = leakwatch::testing::start_parca_server();
  agent::TempDir tmp;
  const std::string token = tmp.path() + "/token";
  std::ofstream(token) << "s3cret\n";
  SinkConfig a = pyroscope_at(py->port());
  a.tenant = "team-a";
  a.bearer_token_file = token;
  a.labels = {{"cluster", "eu-1"}};
  SinkConfig b = parca_at(pa->port());
  b.bearer_token_file = token;
  b.labels = {{"cluster", "eu-1"}};
  auto sinks = Sinks::create({a, b});
  ASSERT_TRUE(sinks) << sinks.error().message;
  (*sinks)->submit(sample_profile("8b0e6f1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b"));
  ASSERT_TRUE(py->wait_for(1, 10));
  ASSERT_TRUE(pa->wait_for(1, 10));
  ASSERT_TRUE((*sinks)->wait_idle(5));

  auto got = py->received();
  ASSERT_EQ(got.size(), 1u);
  expect_decoded(got[0]);
  EXPECT_EQ(got[0].id, "8b0e6f1a-2c3d-4e5f-8a9b-0c1d2e3f4a5b");
  EXPECT_EQ(got[0].headers["x-scope-orgid"], "team-a");
  EXPECT_EQ(got[0].headers["authorization"], "Bearer s3cret");
  auto parca = pa->received();
  ASSERT_EQ(parca.size(), 1u);
  expect_decoded(parca[0]);
  EXPECT_EQ(parca[0].headers["authorization"], "Bearer s3cret");

  for (const SinkStats& st : (*sinks)->stats()) {
    EXPECT_EQ(st.pushed, 1u) << st.sink;
    EXPECT_EQ(st.attempts_failed, 0u) << st.sink;
    EXPECT_EQ(st.queued, 0u) << st.sink;
  }
}

TEST(Sinks, FailedAttemptsAreRetriedWithBackoff) {
  auto py = leakwatch::testing::start_pyroscope_server();
  auto pa = leakwatch::testing::start_parca_server();
  py->fail_next(2);
  pa->fail_next(2);
  auto sinks = Sinks::create({pyroscope_at(py->port()), parca_at(pa->port())});
  ASSERT_TRUE(sinks) << sinks.error().message;
  (*sinks)->submit(sample_profile("1"));
  ASSERT_TRUE(py->wait_for(1, 10));
  ASSERT_TRUE(pa->wait_for(1, 10));
  ASSERT_TRUE((*sinks)->wait_idle(5));
  EXPECT_EQ(py->requests(), 3u);
  EXPECT_EQ(pa->requests(), 3u);
  for (const SinkStats& st : (*sinks)->stats()) {
    EXPECT_EQ(st.pushed, 1u) << st.sink;
    EXPECT_EQ(st.attempts_failed, 2u) << st.sink;
    EXPECT_EQ(st.dropped_attempts + st.dropped_rejected, 0u) << st.sink;
    EXPECT_FALSE(st.last_error.empty()) << st.sink;
  }
}

TEST(Sinks, RejectedProfilesAreNotRetried) {
  auto py = leakwatch::testing::start_pyroscope_server();
  auto pa = leakwatch::testing::start_parca_server();
  py->fail_next(1, /*retryable=*/false);
  pa->fail_next(1, /*retryable=*/false);
  auto sinks = Sinks::create({pyroscope_at(py->port()), parca_at(pa->port())});
  ASSERT_TRUE(sinks);
  (*sinks)->submit(sample_profile("1"));
  ASSERT_TRUE((*sinks)->wait_idle(10));
  EXPECT_EQ(py->requests(), 1u);
  EXPECT_EQ(pa->requests(), 1u);
  for (const SinkStats& st : (*sinks)->stats()) {
    EXPECT_EQ(st.pushed, 0u) << st.sink;
    EXPECT_EQ(st.dropped_rejected, 1u) << st.sink;
    EXPECT_NE(st.last_error.find(st.sink.starts_with("parca") ? "gRPC 3" : "HTTP 400"),
              std::string::npos)
        << st.last_error;
  }
}

// A port with nothing listening: every attempt fails to connect.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(Sinks, UnreachableStoreDropsAfterMaxAttempts) {
  const int port = closed_port();
  SinkConfig a = pyroscope_at(port), b = parca_at(port);
  a.max_attempts = b.max_attempts = 3;
  b.timeout_s = 1;
  auto sinks = Sinks::create({a, b});
  ASSERT_TRUE(sinks);
  (*sinks)->submit(sample_profile("1"));
  ASSERT_TRUE((*sinks)->wait_idle(20));
  for (const SinkStats& st : (*sinks)->stats()) {
    EXPECT_EQ(st.pushed, 0u) << st.sink;
    EXPECT_EQ(st.attempts_failed, 3u) << st.sink;
    EXPECT_EQ(st.dropped_attempts, 1u) << st.sink;
  }
}

TEST(Sinks, SubmitNeverWaitsAndAFullQueueDropsTheOldest) {
  // A store that is down and a long backoff: the first profile waits for its retry while
  // the others queue behind it.
  SinkConfig c = pyroscope_at(closed_port());
  c.backoff_s = 30;
  c.queue_size = 1;
  auto sinks = Sinks::create({c});
  ASSERT_TRUE(sinks);
  (*sinks)->submit(sample_profile("first"));
  // The first attempt fails at once (connection refused); it then sleeps in its backoff.
  for (int i = 0; i < 200 && (*sinks)->stats()[0].attempts_failed == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ((*sinks)->stats()[0].attempts_failed, 1u);
  (*sinks)->submit(sample_profile("second"));
  (*sinks)->submit(sample_profile("third"));  // pushes "second" out
  SinkStats st = (*sinks)->stats()[0];
  EXPECT_EQ(st.dropped_queue_full, 1u);
  EXPECT_EQ(st.queued, 2u);  // "first" in its backoff, "third" waiting
  EXPECT_FALSE((*sinks)->wait_idle(0.1));
  // Stopping ends the backoff at once: what was left is counted as dropped at shutdown.
  sinks->reset();
}

TEST(Sinks, ServiceNameAndVerdictOfAnInvestigation) {
  agent::InvestigationRecord rec;
  rec.request.pid = 7;
  rec.request.comm = "java";
  rec.request.target = "comm:java";
  EXPECT_EQ(agent::service_name(rec.request), "java");
  rec.request.target = "cgroup:/sys/fs/cgroup/system.slice/billing.service";
  EXPECT_EQ(agent::service_name(rec.request), "billing.service");
  rec.request.target = "all";
  EXPECT_EQ(agent::service_name(rec.request), "java");
  rec.request.workload.pod_uid = "2b4e6f80-1a3c-4d5e-8f70-9a1b2c3d4e5f";
  rec.request.workload.pod = "cart-7d9f8b6c5-x2k4q";
  rec.request.workload.k8s_namespace = "shop";
  EXPECT_EQ(agent::service_name(rec.request), "shop/cart-7d9f8b6c5-x2k4q");
  rec.request.workload.container_name = "cart-server";
  EXPECT_EQ(agent::service_name(rec.request), "shop/cart-server");

  EXPECT_EQ(agent::investigation_verdict(rec), "unknown");
  rec.memleak.emplace();
  report::StackReport s;
  s.verdict = report::Verdict::kCache;
  rec.memleak->report.stacks.push_back(s);
  EXPECT_EQ(agent::investigation_verdict(rec), "cache");
  report::Finding f;
  f.verdict = report::Verdict::kLeak;
  rec.memleak->report.finding = f;
  EXPECT_EQ(agent::investigation_verdict(rec), "leak");
}

}  // namespace
}  // namespace leakwatch::sink

namespace leakwatch::agent {
namespace {

using leakwatch::testing::ChildProcess;
using leakwatch::testing::fixture;

TEST(AgentSinks, StoredInvestigationIsPushedToBothStores) {
  auto py = leakwatch::testing::start_pyroscope_server();
  auto pa = leakwatch::testing::start_parca_server();
  ChildProcess child({fixture("agent_grower"), "leak", "2048"});  // 2 MiB/s
  ASSERT_EQ(child.read_line(), "ready");
  TempDir tmp;
  AgentConfig c = fast_config(tmp.path() + "/reports");
  c.targets.push_back({TargetSpec::Kind::kComm, "agent_grower", 0, "", 1});
  c.node_name = "node-7";
  c.sinks = {sink::SinkConfig{}, sink::SinkConfig{}};
  c.sinks[0].kind = sink::SinkConfig::Kind::kPyroscope;
  c.sinks[0].endpoint = "http://127.0.0.1:" + std::to_string(py->port());
  c.sinks[1].kind = sink::SinkConfig::Kind::kParca;
  c.sinks[1].endpoint = "127.0.0.1:" + std::to_string(pa->port());
  c.sinks[1].insecure = true;
  py->fail_next(1);  // the first push is retried
  FakeLog log;
  AgentOptions o;
  o.investigator = [&] { return std::make_unique<FakeInvestigator>(log, 0.2); };
  auto a = Agent::create(c, o);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(tick_until(**a, 15, [&] { return (*a)->counters().reports_stored >= 1; }));
  ASSERT_TRUE(py->wait_for(1, 15));
  ASSERT_TRUE(pa->wait_for(1, 15));

  for (const auto& got : {py->received().at(0), pa->received().at(0)}) {
    ASSERT_TRUE(got.parsed);
    EXPECT_EQ(got.label("__name__"), "leakwatch_allocations");
    EXPECT_EQ(got.label("service_name"), "agent_grower");
    EXPECT_EQ(got.label("node"), "node-7");
    EXPECT_EQ(got.label("pid"), std::to_string(child.pid()));
    EXPECT_EQ(got.label("comm"), "agent_grower");
    EXPECT_EQ(got.label("target"), "comm:agent_grower");
    EXPECT_EQ(got.label("verdict"), "unknown");  // the fake report names no verdict
    auto fns = got.function_names();
    EXPECT_NE(std::find(fns.begin(), fns.end(), "leaky_function"), fns.end());
  }
  (*a)->shutdown();
  const std::string text = (*a)->metrics_text();
  const std::string py_sink = "sink=\"pyroscope:http://127.0.0.1:" + std::to_string(py->port());
  // Every stored investigation is pushed once (a second one may finish before the shutdown).
  const double stored = static_cast<double>((*a)->counters().reports_stored);
  EXPECT_EQ(metric(text, "leakwatch_sink_profiles_pushed_total", py_sink), stored) << text;
  EXPECT_EQ(metric(text, "leakwatch_sink_attempts_failed_total", py_sink), 1.0);
  EXPECT_EQ(metric(text, "leakwatch_sink_profiles_pushed_total", "sink=\"parca:"), stored);
  EXPECT_EQ(metric(text, "leakwatch_sink_profiles_dropped_total", "reason=\"attempts\""), 0.0);
  EXPECT_EQ(metric(text, "leakwatch_sink_queue_length", py_sink), 0.0);
}

}  // namespace
}  // namespace leakwatch::agent
