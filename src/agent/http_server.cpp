#include "agent/http_server.h"

#include <httplib.h>

#include <chrono>

#include "agent/report_pages.h"

namespace leakwatch::agent {

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ListenAddress& address,
                                                      const Agent& agent) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *s->server_;
  // Scrapes are rare and cheap: two threads instead of httplib's default pool.
  srv.new_task_queue = [] { return new httplib::ThreadPool(2); };
  srv.set_read_timeout(5, 0);
  srv.set_write_timeout(5, 0);
  srv.Get("/metrics", [&agent](const httplib::Request&, httplib::Response& res) {
    res.set_content(agent.metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  srv.Get("/api/reports", [&agent](const httplib::Request&, httplib::Response& res) {
    res.set_content(agent.reports_json(), "application/json");
  });
  register_report_pages(srv, agent);  // /, /reports/<id>, /api/reports/<id>[/<file>]
  int port = address.port;
  if (port == 0) {
    port = srv.bind_to_any_port(address.host);
    if (port < 0) return fail("cannot listen on {}:0", address.host);
  } else if (!srv.bind_to_port(address.host, port)) {
    return fail("cannot listen on {}:{} (in use, or not an address of this host)",
                address.host, port);
  }
  s->host_ = address.host;
  s->port_ = port;
  s->thread_ = std::thread([&srv] { srv.listen_after_bind(); });
  // The socket already listens (connections queue); wait for the accept loop so that a
  // stop() right after start() is not lost.
  for (int i = 0; i < 500 && !srv.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return s;
}

HttpServer::~HttpServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace leakwatch::agent
