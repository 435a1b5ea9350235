#include "support/agent_run.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include <gtest/gtest.h>
#include <httplib.h>

#include "support/reliability.h"

namespace leakwatch::testing {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

double metric_sum(const std::string& text, const std::string& name) {
  double sum = -1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (!line.starts_with(name)) continue;
    if (line.size() > name.size() && line[name.size()] != ' ' && line[name.size()] != '{') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos) continue;
    sum = (sum < 0 ? 0 : sum) + std::strtod(std::string(line.substr(sp + 1)).c_str(), nullptr);
  }
  return sum;
}

std::string AgentRun::metrics() const {
  // Keeps the agent's stderr pipe drained (its log would fill it and block the agent).
  if (proc) (void)proc->read_line(std::chrono::milliseconds(0));
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2);
  c.set_read_timeout(5);
  auto res = c.Get("/metrics");
  return res && res->status == 200 ? res->body : "";
}

AgentRun start_agent(const std::string& body, const std::string& reports_dir) {
  AgentRun a;
  a.dir = temp_path("agent");
  std::filesystem::create_directories(a.dir);
  a.reports = reports_dir.empty() ? a.dir + "/reports" : reports_dir;
  a.port = free_port();
  const std::string config = a.dir + "/agent.yaml";
  std::ofstream(config) << "listen: 127.0.0.1:" << a.port << "\nreports_dir: " << a.reports
                        << "\nenvironment: ci\n" << body;
  a.proc = std::make_unique<Proc>(std::vector<std::string>{leakwatch(), "agent", "--config", config});
  EXPECT_TRUE(eventually([&] { return a.metric("leakwatch_agent_uptime_seconds") >= 0; },
                         std::chrono::seconds(30)))
      << "agent metrics never answered";
  return a;
}

int stop_agent(AgentRun& a) {
  a.proc->signal(SIGTERM);
  int st = a.proc->wait(std::chrono::seconds(60));
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace leakwatch::testing
