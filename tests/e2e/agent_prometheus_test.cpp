// A real Prometheus server (Debian's /usr/bin/prometheus) scrapes the agent's /metrics on
// loopback every second and its query API returns leakwatch series.  Bounded to ~30 s.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/http_server.h"
#include "common/atomic_file.h"
#include "support/process.h"

namespace leakwatch::agent {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kPrometheus = "/usr/bin/prometheus";

class PrometheusProcess {
 public:
  PrometheusProcess(const std::string& dir, int port) {
    const std::string log = dir + "/prometheus.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::string cfg = "--config.file=" + dir + "/prometheus.yml";
      std::string data = "--storage.tsdb.path=" + dir + "/data";
      std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
      ::execl(kPrometheus, kPrometheus, cfg.c_str(), data.c_str(), listen.c_str(),
              "--log.level=warn", static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~PrometheusProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 50; ++i) {  // up to 5 s for a clean TSDB shutdown
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  bool alive() const { return pid_ > 0 && ::kill(pid_, 0) == 0 && !exited(); }

 private:
  bool exited() const {
    int status;
    return ::waitpid(pid_, &status, WNOHANG) == pid_;
  }
  pid_t pid_ = -1;
};

TEST(AgentPrometheus, RealPrometheusScrapesLeakwatchSeries) {
  if (::access(kPrometheus, X_OK) != 0) GTEST_SKIP() << kPrometheus << " not installed";
  std::string tmpl = (fs::temp_directory_path() / "lw-agent-prom-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());

  // The agent, in process: watching this test process, serving on a free loopback port.
  AgentConfig c;
  c.reports_dir = dir + "/reports";
  c.detection.interval_s = 0.5;
  c.detection.rate_window_s = 2;
  c.targets.push_back({TargetSpec::Kind::kPid, "", ::getpid(), "", 1});
  auto agent = Agent::create(c, AgentOptions{});
  ASSERT_TRUE(agent) << agent.error().message;
  (*agent)->tick();
  auto server = HttpServer::start({"127.0.0.1", 0}, **agent);
  ASSERT_TRUE(server) << server.error().message;
  const int agent_port = (*server)->port();
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    while (!stop) {
      (*agent)->tick();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });

  // The endpoint itself: read-only, the right content types.
  httplib::Client self("127.0.0.1", agent_port);
  auto m = self.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  auto r = self.Get("/api/reports");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(json::parse(r->body).is_array());
  auto post = self.Post("/api/reports", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_NE(post->status, 200);

  const int prom_port = testing::free_port();
  ASSERT_GT(prom_port, 0);
  ASSERT_TRUE(write_file_atomic(dir + "/prometheus.yml",
                                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                "  evaluation_interval: 1s\n"
                                "scrape_configs:\n  - job_name: leakwatch\n"
                                "    static_configs:\n      - targets: ['127.0.0.1:" +
                                    std::to_string(agent_port) + "']\n"));
  json found;
  std::string last_error;
  {
    PrometheusProcess prom(dir, prom_port);
    httplib::Client api("127.0.0.1", prom_port);
    api.set_connection_timeout(1, 0);
    api.set_read_timeout(2, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && prom.alive()) {
      auto q = api.Get("/api/v1/query?query=leakwatch_process_rss_bytes");
      if (q && q->status == 200) {
        json j = json::parse(q->body, nullptr, false);
        if (j.is_object() && j.value("status", "") == "success" &&
            !j["data"]["result"].empty()) {
          found = j["data"]["result"][0];
          break;
        }
        last_error = q->body;
      } else {
        last_error = q ? "HTTP " + std::to_string(q->status) : httplib::to_string(q.error());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  stop = true;
  ticker.join();
  ASSERT_FALSE(found.is_null()) << "no leakwatch series in Prometheus within 30 s; last: "
                                << last_error << "\nprometheus log:\n"
                                << read_file(dir + "/prometheus.log").value_or("");
  EXPECT_EQ(found["metric"]["__name__"], "leakwatch_process_rss_bytes");
  EXPECT_EQ(found["metric"]["job"], "leakwatch");
  EXPECT_EQ(found["metric"]["pid"], std::to_string(::getpid()));
  EXPECT_EQ(found["metric"]["target"], "pid:" + std::to_string(::getpid()));
  EXPECT_GT(std::stod(found["value"][1].get<std::string>()), 1024.0 * 1024.0);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace leakwatch::agent
