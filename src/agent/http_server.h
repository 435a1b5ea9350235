// The agent's read-only HTTP endpoint:
//   GET /metrics       Prometheus text exposition (version 0.0.4)
//   GET /api/reports   JSON array of stored investigation reports (index.json)
//   GET /, /reports/<id>, /api/reports/<id>[/<file>]   the stored investigations as pages
//                      and files (report_pages.h)
// Only GET and HEAD are served (405 otherwise).  Routes are cpp-httplib's (registered on an
// httplib::Server in http_server.cpp); connections are HttpConnections' (bounded: idle and
// slow clients cannot hold the scrape up, see http_connections.h for every limit).
// Thread-safety: handlers run on the server's own threads and only call the Agent's
// thread-safe accessors; start/stop from one thread.
#pragma once

#include <memory>
#include <string>

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/http_connections.h"
#include "common/result.h"

namespace httplib {
class Server;
}

namespace leakwatch::agent {

class HttpServer {
 public:
  // Binds (port 0 picks a free port) and starts serving.  The Agent must outlive it.
  [[nodiscard]] static Result<std::unique_ptr<HttpServer>> start(const ListenAddress& address,
                                                                 const Agent& agent,
                                                                 const HttpLimits& limits = {});
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  HttpStats stats() const;

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::unique_ptr<HttpConnections> connections_;
  std::string host_;
  int port_ = 0;
};

}  // namespace leakwatch::agent
