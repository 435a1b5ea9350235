#include "agent/http_server.h"

#include <httplib.h>

#include <chrono>

#include "agent/report_pages.h"

namespace leakwatch::agent {
namespace {

// One request already read completely by HttpConnections, and the response being made.
class BufferedStream final : public httplib::Stream {
 public:
  BufferedStream(std::string_view request, const HttpPeer& peer, std::string& out)
      : request_(request), peer_(peer), out_(out) {}
  bool is_readable() const override { return pos_ < request_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    size_t n = std::min(size, request_.size() - pos_);
    std::copy_n(request_.data() + pos_, n, ptr);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_.address;
    port = peer_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_.local_address;
    port = peer_.local_port;
  }
  // No socket: httplib's request processing only compares it with FD_SETSIZE.
  socket_t socket() const override { return INVALID_SOCKET; }

 private:
  std::string_view request_;
  size_t pos_ = 0;
  const HttpPeer& peer_;
  std::string& out_;
};

// httplib's routing and response writing, on requests HttpConnections hands over (its own
// listen/accept/thread-pool side is never started: see http_connections.h for why).
class Router final : public httplib::Server {
 public:
  void handle(std::string_view request, const HttpPeer& peer, bool last, std::string& response,
              bool& close) {
    BufferedStream stream(request, peer, response);
    bool closed = false;
    if (!process_request(stream, last, closed, nullptr)) close = true;
    close = close || closed || last;
  }
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::start(const ListenAddress& address,
                                                      const Agent& agent,
                                                      const HttpLimits& limits) {
  std::unique_ptr<HttpServer> s(new HttpServer());
  auto router = std::make_unique<Router>();
  Router* route = router.get();
  s->server_ = std::move(router);
  httplib::Server& srv = *s->server_;
  // What the Keep-Alive header announces.
  srv.set_keep_alive_max_count(limits.max_requests_per_connection);
  srv.set_keep_alive_timeout(std::max<time_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(limits.request_timeout).count()));
  srv.Get("/metrics", [&agent](const httplib::Request&, httplib::Response& res) {
    res.set_content(agent.metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  });
  srv.Get("/api/reports", [&agent](const httplib::Request&, httplib::Response& res) {
    res.set_content(agent.reports_json(), "application/json");
  });
  register_report_pages(srv, agent);  // /, /reports/<id>, /api/reports/<id>[/<file>]
  auto connections = HttpConnections::start(
      address.host, address.port, limits,
      [route](std::string_view request, const HttpPeer& peer, bool last, std::string& response,
              bool& close) { route->handle(request, peer, last, response, close); });
  if (!connections) return std::unexpected(connections.error());
  s->connections_ = std::move(*connections);
  s->host_ = address.host;
  s->port_ = s->connections_->port();
  return s;
}

HttpStats HttpServer::stats() const { return connections_->stats(); }

HttpServer::~HttpServer() {
  connections_.reset();  // no handler runs after this
}

}  // namespace leakwatch::agent
