#include "cli/agent_cmd.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/http_server.h"
#include "cli/signal_wait.h"
#include "common/log.h"
#include "metrics/process_collector.h"

namespace leakwatch::cli {
namespace {

void print_status(const agent::Agent& a) {
  time_t now = ::time(nullptr);
  tm t{};
  ::localtime_r(&now, &t);
  std::string out = fmt::format("--- {:02}:{:02}:{:02} ---\n", t.tm_hour, t.tm_min, t.tm_sec);
  for (const std::string& line : a.status_lines()) out += line + "\n";
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

}  // namespace

CLI::App* add_agent_subcommand(CLI::App& app, AgentCommandOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "agent",
      "Always-on memory watch: detect sustained growth and OOM risk from /proc and cgroup "
      "v2, investigate suspects with a time-boxed allocation trace, export Prometheus "
      "metrics");
  cmd->add_option("-c,--config", options.config_path, "YAML configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_flag("--once", options.once,
                "Evaluate once (two samples a second apart), print the status and exit");
  cmd->add_flag("-f,--foreground", options.foreground,
                "Print a status line per watched process every interval");
  cmd->add_option("--listen", options.listen,
                  "HOST:PORT for /metrics and /api/reports, overriding the configuration "
                  "(\"off\" to disable)");
  cmd->add_option("--proc-root", options.proc_root,
                  "Where the host's procfs is mounted (in a container: e.g. /host/proc)")
      ->check(CLI::ExistingDirectory);
  return cmd;
}

int run_agent_command(const AgentCommandOptions& options,
                      agent::InvestigatorFactory investigator,
                      agent::GrowthLocatorFactory growth) {
  auto config = agent::load_config(options.config_path);
  if (!config) {
    std::fprintf(stderr, "leakwatch agent: %s\n", config.error().message.c_str());
    return 2;
  }
  if (!options.listen.empty()) config->listen = options.listen == "off" ? "" : options.listen;
  std::optional<agent::ListenAddress> listen;
  if (!config->listen.empty()) {
    auto a = agent::parse_listen(config->listen);
    if (!a) {
      std::fprintf(stderr, "leakwatch agent: --listen: %s\n", a.error().message.c_str());
      return 2;
    }
    listen = *a;
  }

  // Block the control signals before any thread exists: every thread inherits the mask and
  // the loop below takes them with sigtimedwait, so no handler runs in signal context.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  agent::AgentOptions agent_options;
  agent_options.investigator = std::move(investigator);
  agent_options.growth = std::move(growth);
  agent_options.proc_root = options.proc_root;
  auto a = agent::Agent::create(*config, std::move(agent_options));
  if (!a) {
    std::fprintf(stderr, "leakwatch agent: %s\n", a.error().message.c_str());
    return 1;
  }
  agent::Agent& ag = **a;

  if (options.once) {
    ag.tick();
    wait_signal(set, metrics::monotonic_seconds() + std::min(1.0, config->detection.interval_s));
    ag.tick();
    for (const std::string& line : ag.status_lines()) std::printf("%s\n", line.c_str());
    return 0;
  }

  std::unique_ptr<agent::HttpServer> server;
  if (listen) {
    // Each HTTP connection is a descriptor: the soft limit (often 1024) would cap how many
    // clients are served at once well below what the server is built for.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    auto s = agent::HttpServer::start(*listen, ag);
    if (!s) {
      std::fprintf(stderr, "leakwatch agent: %s\n", s.error().message.c_str());
      return 1;
    }
    server = std::move(*s);
    log::warn("agent: serving http://{}:{}/metrics and /api/reports", server->host(),
              server->port());
    if (listen->host != "127.0.0.1" && listen->host != "::1" && listen->host != "localhost")
      log::warn("agent: listening on {}, not loopback: /metrics and /api/reports are "
                "reachable from the network", listen->host);
  }

  double next = metrics::monotonic_seconds();
  for (;;) {
    ag.tick();
    if (options.foreground) print_status(ag);
    next += ag.config().detection.interval_s;
    // A slow round (or a suspended VM) must not cause a burst of catch-up rounds.
    if (next < metrics::monotonic_seconds()) next = metrics::monotonic_seconds();
    int sig = wait_signal(set, next);
    while (sig == SIGHUP) {
      auto fresh = agent::load_config(options.config_path);
      if (!fresh) {
        log::error("agent: reload rejected, keeping the running configuration: {}",
                   fresh.error().message);
      } else {
        if (!options.listen.empty()) fresh->listen = ag.config().listen;
        if (fresh->listen != ag.config().listen)
          log::warn("agent: `listen` changed; it takes effect at the next restart");
        fresh->listen = ag.config().listen;
        if (auto r = ag.reload(std::move(*fresh)); !r)
          log::error("agent: reload rejected, keeping the running configuration: {}",
                     r.error().message);
        else
          log::warn("agent: configuration reloaded from {}", options.config_path);
      }
      sig = wait_signal(set, next);
    }
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  if (ag.running_investigations() > 0)
    log::warn("agent: stopping; waiting for {} investigation(s) to save their reports",
              ag.running_investigations());
  ag.shutdown();
  server.reset();
  return 0;
}

}  // namespace leakwatch::cli
