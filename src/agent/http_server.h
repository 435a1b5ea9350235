// The agent's read-only HTTP endpoint (cpp-httplib):
//   GET /metrics       Prometheus text exposition (version 0.0.4)
//   GET /api/reports   JSON array of stored investigation reports (index.json)
//   GET /, /reports/<id>, /api/reports/<id>[/<file>]   the stored investigations as pages
//                      and files (report_pages.h)
// Only GET (and so HEAD) is served.  Thread-safety: handlers run on the server's own threads and only
// call the Agent's thread-safe accessors; start/stop from one thread.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "agent/config.h"
#include "common/result.h"

namespace httplib {
class Server;
}

namespace leakwatch::agent {

class HttpServer {
 public:
  // Binds (port 0 picks a free port) and starts serving.  The Agent must outlive it.
  [[nodiscard]] static Result<std::unique_ptr<HttpServer>> start(const ListenAddress& address,
                                                                 const Agent& agent);
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  const std::string& host() const { return host_; }

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string host_;
  int port_ = 0;
};

}  // namespace leakwatch::agent
