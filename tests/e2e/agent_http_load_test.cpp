// The agent's HTTP endpoint under hostile load, against the real `leakwatch agent` process:
// 200 clients holding idle connections or dripping header bytes must not delay a /metrics
// scrape past a second; 2,000 concurrent requests are all answered; the agent's memory
// stays bounded; the limits (URL and header size, methods, bodies, keep-alive, per-client
// connections, header timeout) answer as documented in src/agent/http_connections.h.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/http_server.h"
#include "common/atomic_file.h"
#include "common/fd.h"
#include "support/process.h"
#include "support/reliability.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return -1;
  return ntohs(a.sin_port);
}

void raise_nofile() {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &r);
}

// A blocking TCP connection to 127.0.0.1:port, or an invalid fd.
UniqueFd connect_to(int port, bool nonblocking = false) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (rc != 0 && !(nonblocking && errno == EINPROGRESS)) return UniqueFd();
  return fd;
}

struct Response {
  int status = 0;
  std::string headers;
  std::string body;
  bool complete = false;  // the whole Content-Length arrived
};

// Parses what was read from a connection (one response).
Response parse_response(const std::string& data) {
  Response r;
  size_t end = data.find("\r\n\r\n");
  if (end == std::string::npos || data.compare(0, 9, "HTTP/1.1 ") != 0) return r;
  r.status = std::atoi(data.c_str() + 9);
  r.headers = data.substr(0, end);
  r.body = data.substr(end + 4);
  std::string lower = r.headers;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  size_t cl = lower.find("content-length: ");
  if (cl != std::string::npos) {
    size_t want = std::stoul(lower.substr(cl + 16));
    r.complete = r.body.size() >= want;
    r.body.resize(std::min(r.body.size(), want));
  }
  return r;
}

// Sends `request` on a fresh connection and reads one response (until Content-Length or
// EOF), within `timeout`.
std::optional<Response> exchange(int port, const std::string& request,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  UniqueFd fd = connect_to(port);
  if (!fd.valid()) return std::nullopt;
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size()))
    return std::nullopt;
  std::string data;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (::poll(&p, 1, std::max(left, 1)) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
    Response r = parse_response(data);
    if (r.complete) return r;
  }
  Response r = parse_response(data);
  if (r.status == 0) return std::nullopt;
  return r;
}

const std::string kScrape = "GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n";

// `leakwatch agent` watching this test and pid 1, HTTP on a free loopback port.  (Not
// `all: true`: a round over every process of a busy host can take seconds, and the test
// is about the HTTP side.)
class AgentProcess {
 public:
  AgentProcess() {
    std::string tmpl = (fs::temp_directory_path() / "lw-http-load-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    port_ = free_port();
    std::string config = dir_ + "/agent.yaml";
    (void)write_file_atomic(config, "listen: 127.0.0.1:" + std::to_string(port_) +
                                        "\nreports_dir: " + dir_ + "/reports\n"
                                        "targets:\n  - pid: " + std::to_string(::getpid()) +
                                        "\n  - pid: 1\n"
                                        "detection:\n  interval: 1s\n  rate_window: 3s\n");
    proc_ = std::make_unique<Proc>(std::vector<std::string>{leakwatch(), "agent", "--config", config});
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      if (auto r = exchange(port_, kScrape, std::chrono::seconds(2)); r && r->status == 200) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~AgentProcess() {
    proc_->signal(SIGTERM);
    proc_->wait(std::chrono::seconds(20));
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  pid_t pid() const { return proc_->pid(); }
  // A field of /proc/PID/status in KiB ("VmRSS", "VmHWM").
  long status_kib(const std::string& field) const {
    std::ifstream in("/proc/" + std::to_string(pid()) + "/status");
    std::string key;
    long value = -1;
    while (in >> key) {
      if (key == field + ":") {
        in >> value;
        return value;
      }
      in.ignore(4096, '\n');
    }
    return -1;
  }
  std::string err() {
    return proc_->err();
  }

 private:
  std::string dir_;
  int port_ = -1;
  std::unique_ptr<Proc> proc_;
  bool ready_ = false;
};

// Holds `idle` connections that never send a byte and `drippers` that send a request
// header one byte at a time every `drip` apart; a connection the agent closes is opened
// again at once, so the pressure stays for as long as it runs.
class Attackers {
 public:
  Attackers(int port, size_t idle, size_t drippers, std::chrono::milliseconds drip)
      : port_(port), thread_([=, this] { run(idle, drippers, drip); }) {}
  ~Attackers() {
    stop_ = true;
    thread_.join();
  }
  size_t held() const { return held_; }
  size_t reopened() const { return reopened_; }

 private:
  struct Conn {
    UniqueFd fd;
    bool dripper = false;
    size_t sent = 0;
  };
  void run(size_t idle, size_t drippers, std::chrono::milliseconds drip) {
    const std::string header = "GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Pad: " +
                               std::string(2000, 'a') + "\r\n\r\n";
    std::vector<Conn> conns;
    for (size_t i = 0; i < idle + drippers; ++i) conns.push_back({connect_to(port_), i >= idle, 0});
    auto next_drip = Clock::now();
    while (!stop_) {
      size_t held = 0;
      for (Conn& c : conns) {
        // Closed by the agent (EOF, reset): open another, as an attacker would.
        pollfd p{c.fd.get(), POLLIN | POLLRDHUP, 0};
        bool closed = !c.fd.valid() || (::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)));
        if (closed) {
          c.fd = connect_to(port_);
          c.sent = 0;
          ++reopened_;
        }
        held += c.fd.valid();
      }
      held_ = held;
      if (Clock::now() >= next_drip) {
        for (Conn& c : conns)
          if (c.dripper && c.fd.valid() && c.sent < header.size())
            if (::send(c.fd.get(), header.data() + c.sent, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++c.sent;
        next_drip = Clock::now() + drip;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  int port_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> held_{0}, reopened_{0};
  std::thread thread_;
};

TEST(AgentHttpLoad, ScrapeAnswersWithinASecondWhile200ClientsHoldOrDrip) {
  raise_nofile();
  AgentProcess agent;
  ASSERT_TRUE(agent.ready()) << agent.err();
  Attackers attackers(agent.port(), 150, 50, std::chrono::milliseconds(300));
  // Let them all connect (and the drippers start) before measuring.
  auto start = Clock::now();
  while (attackers.held() < 200 && seconds_since(start) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(attackers.held(), 200u);

  // Scrapes for 8 s, past the agent's 3 s header timeout, so idle and dripping clients are
  // closed and come back meanwhile.
  std::vector<double> latencies;
  size_t failures = 0;
  auto until = Clock::now() + std::chrono::seconds(8);
  while (Clock::now() < until) {
    auto t0 = Clock::now();
    auto r = exchange(agent.port(), kScrape, std::chrono::seconds(5));
    double s = seconds_since(t0);
    if (!r || r->status != 200 || !r->complete || r->body.find("leakwatch_agent_uptime_seconds") == std::string::npos)
      ++failures;
    latencies.push_back(s);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::sort(latencies.begin(), latencies.end());
  ASSERT_FALSE(latencies.empty());
  double worst = latencies.back(), median = latencies[latencies.size() / 2];
  std::printf("scrapes: %zu, median %.1f ms, worst %.1f ms, attackers held %zu, reopened %zu\n",
              latencies.size(), median * 1e3, worst * 1e3, attackers.held(), attackers.reopened());
  EXPECT_EQ(failures, 0u);
  EXPECT_LT(worst, 1.0) << "a scrape waited behind idle or slow clients";
  // The header timeout closed idle and dripping connections (each drips 1 byte / 300 ms:
  // their 2 KiB header would take ten minutes).
  EXPECT_GE(attackers.reopened(), 150u);
}

// 2,000 requests in flight at once, every one answered completely; the agent's peak
// resident memory stays under a bound.
TEST(AgentHttpLoad, TwoThousandConcurrentRequestsAllAnswered) {
  raise_nofile();
  AgentProcess agent;
  ASSERT_TRUE(agent.ready()) << agent.err();
  const long rss_before = agent.status_kib("VmRSS");
  constexpr size_t kClients = 2000;
  struct Client {
    UniqueFd fd;
    size_t sent = 0;
    std::string data;
    bool done = false;
    int error = 0;  // errno of a failed send or receive
  };
  // Each client sends its request as soon as it is connected, as real clients do; the
  // responses are read once all 2,000 are in flight.
  std::vector<Client> clients(kClients);
  for (Client& c : clients) {
    c.fd = connect_to(agent.port());
    ASSERT_TRUE(c.fd.valid()) << std::strerror(errno);
    ssize_t n = ::send(c.fd.get(), kScrape.data(), kScrape.size(), MSG_NOSIGNAL);
    if (n > 0) c.sent = static_cast<size_t>(n);
    ::fcntl(c.fd.get(), F_SETFL, O_NONBLOCK);
  }
  const auto started = Clock::now();
  auto deadline = started + std::chrono::seconds(90);
  size_t done = 0;
  while (done < kClients && Clock::now() < deadline) {
    std::vector<pollfd> fds;
    std::vector<size_t> index;
    for (size_t i = 0; i < kClients; ++i) {
      if (clients[i].done) continue;
      short ev = clients[i].sent < kScrape.size() ? POLLOUT : POLLIN;
      fds.push_back({clients[i].fd.get(), ev, 0});
      index.push_back(i);
    }
    if (::poll(fds.data(), fds.size(), 200) <= 0) continue;
    for (size_t k = 0; k < fds.size(); ++k) {
      Client& c = clients[index[k]];
      if (fds[k].revents & POLLOUT) {
        ssize_t n = ::send(c.fd.get(), kScrape.data() + c.sent, kScrape.size() - c.sent, MSG_NOSIGNAL);
        if (n > 0) {
          c.sent += static_cast<size_t>(n);
        } else if (errno != EAGAIN) {
          c.error = errno;
          c.done = true;
          ++done;
        }
      } else if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
        if (n > 0) {
          c.data.append(buf, static_cast<size_t>(n));
        } else if (n == 0 || errno != EAGAIN) {
          if (n < 0) c.error = errno;
          c.done = true;
          ++done;
          c.fd.reset();
        }
      }
    }
  }
  size_t ok = 0;
  std::map<std::string, size_t> problems;
  for (const Client& c : clients) {
    Response r = parse_response(c.data);
    if (r.status == 200 && r.complete) ++ok;
    else
      ++problems[(c.data.empty() ? std::string("no response")
                                 : "status " + std::to_string(r.status) +
                                       (r.complete ? "" : " incomplete")) +
                 (c.error ? std::string(" (") + std::strerror(c.error) + ")" : "") +
                 (c.sent < kScrape.size() ? " (request not sent)" : "")];
  }
  const double took = seconds_since(started);
  const long hwm = agent.status_kib("VmHWM"), rss_after = agent.status_kib("VmRSS");
  std::printf("%zu/%zu answered 200 completely in %.1f s; agent RSS %ld KiB before, %ld after, "
              "peak %ld\n",
              ok, kClients, took, rss_before, rss_after, hwm);
  for (const auto& [what, n] : problems) std::printf("  %zu: %s\n", n, what.c_str());
  EXPECT_EQ(ok, kClients) << agent.err();
  // Not a speed target (that is bench/), a sanity bound: about 1.5 s here; a server that
  // queues every connection behind a worker pool took minutes.
  EXPECT_LT(took, 30.0);
  // The bound: the agent itself (~16 MiB here) plus what the server allows itself: 32 MiB
  // of unwritten responses and 8 KiB of request header per connection.
  if (!kSanitizedBuild) {
    EXPECT_LT(hwm, 128 * 1024) << "peak resident memory above 128 MiB";
  }
  // And a scrape right after is as quick as ever.
  auto t0 = Clock::now();
  auto r = exchange(agent.port(), kScrape);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(seconds_since(t0), 1.0);
}

TEST(AgentHttpLoad, LimitsAnswerAsDocumented) {
  raise_nofile();
  AgentProcess agent;
  ASSERT_TRUE(agent.ready()) << agent.err();
  const int port = agent.port();
  auto get = [&](const std::string& request) {
    auto r = exchange(port, request);
    return r ? *r : Response{};
  };
  EXPECT_EQ(get("GET /" + std::string(3000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n").status, 414);
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(9000, 'b') + "\r\n\r\n").status, 431);
  Response post = get("POST /api/reports HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos) << post.headers;
  EXPECT_EQ(get("DELETE /metrics HTTP/1.1\r\nHost: a\r\n\r\n").status, 405);
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello").status, 400);
  EXPECT_EQ(get("GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").status, 400);
  Response head = get("HEAD /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(get("GET /no-such-page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").status, 404);

  // Keep-alive: at most 100 requests on one connection, the last one says so and closes.
  UniqueFd fd = connect_to(port);
  ASSERT_TRUE(fd.valid());
  const std::string keep = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  int answered = 0;
  bool closed_by_server = false;
  std::string data;
  for (int i = 0; i < 101 && !closed_by_server; ++i) {
    if (::send(fd.get(), keep.data(), keep.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(keep.size())) {
      closed_by_server = true;
      break;
    }
    data.clear();
    for (;;) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n <= 0) {
        closed_by_server = true;
        break;
      }
      data.append(buf, static_cast<size_t>(n));
      if (parse_response(data).complete) break;
    }
    if (parse_response(data).complete) ++answered;
    if (data.find("Connection: close") != std::string::npos) closed_by_server = true;
  }
  EXPECT_EQ(answered, 100);
  EXPECT_TRUE(closed_by_server);
}

// The per-client bound and the header timeout, with limits small enough to watch (an
// in-process server on the same code).
TEST(AgentHttpLimits, PerClientBoundAndHeaderTimeout) {
  raise_nofile();
  agent::AgentConfig c;
  std::string tmpl = (fs::temp_directory_path() / "lw-http-limits-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  c.reports_dir = dir + "/reports";
  c.targets.push_back({agent::TargetSpec::Kind::kPid, "", ::getpid(), "", 1});
  auto ag = agent::Agent::create(c, agent::AgentOptions{});
  ASSERT_TRUE(ag) << ag.error().message;
  agent::HttpLimits limits;
  limits.max_waiting_per_client = 10;
  limits.grace = std::chrono::milliseconds(300);
  limits.request_timeout = std::chrono::milliseconds(2500);
  auto server = agent::HttpServer::start({"127.0.0.1", 0}, **ag, limits);
  ASSERT_TRUE(server) << server.error().message;
  const int port = (*server)->port();

  // 40 idle connections from one address: after the grace, all but 10 are closed.
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 40; ++i) idle.push_back(connect_to(port));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto closed = [&] {
    size_t n = 0;
    for (const UniqueFd& fd : idle) {
      pollfd p{fd.get(), POLLIN | POLLRDHUP, 0};
      n += ::poll(&p, 1, 0) > 0;
    }
    return n;
  };
  EXPECT_EQ(closed(), 30u);
  EXPECT_EQ((*server)->stats().evicted, 30u);
  // The client's own new request is served meanwhile.
  auto r = exchange(port, kScrape);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);

  // A client dripping a byte every 100 ms is closed at the header timeout all the same.
  UniqueFd drip = connect_to(port);
  auto t0 = Clock::now();
  bool dropped = false;
  const std::string header = "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(200, 'x');
  for (size_t i = 0; i < header.size() && !dropped; ++i) {
    if (::send(drip.get(), &header[i], 1, MSG_NOSIGNAL) != 1) dropped = true;
    pollfd p{drip.get(), POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 100) > 0) dropped = true;
  }
  double lasted = seconds_since(t0);
  EXPECT_TRUE(dropped);
  EXPECT_GE(lasted, 2.0);
  EXPECT_LT(lasted, 5.0);
  EXPECT_GE((*server)->stats().timed_out, 1u);
  server->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace leakwatch::testing
