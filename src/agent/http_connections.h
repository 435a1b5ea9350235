// The agent's HTTP connections, bounded: one thread accepts and reads every connection
// with epoll, and only a connection that has sent a complete request header reaches the
// handler threads.  Why not cpp-httplib's own server: it gives each connection a worker
// thread from a fixed pool for as long as the connection lives (blocking reads with a read
// timeout, keep-alive included), so as many idle or slow clients as there are workers
// silence /metrics, and its queue of accepted connections is unbounded.  A bigger pool
// moves the threshold, it does not remove it.  Routing stays cpp-httplib's (HttpServer
// registers its routes on an httplib::Server and runs each request through it).
//
//   clients ──accept──► loop thread (epoll) ──complete header──► handler threads
//              ◄── response bytes, written without blocking ◄────┘
//
// Limits (HttpLimits), each with the reason it exists:
//   - connections open at once (all clients): beyond it the connection that has waited
//     longest for a request is closed, or, when every connection is busy, the new one;
//   - connections of one client address waiting for a request: above the bound the
//     client's longest-waiting connections are closed, once they have waited `grace` (a
//     burst of requests from one address is served; idle hoarding is not);
//   - a request header must be complete within `request_timeout` of the connection being
//     ready for it (accepted, or its previous response written): idle keep-alive and
//     byte-dripping clients are closed, however slowly they send;
//   - request line (URL) and header sizes: 414 and 431;
//   - GET and HEAD only (405 otherwise), no request bodies (400);
//   - requests per connection (then "Connection: close");
//   - bytes of responses not yet written: handler threads wait above it, so memory stays
//     bounded however many clients ask at once and however slowly they read;
//   - a response must be written within `write_timeout`.
//
// Thread-safety: start/stop and stats() from any thread; the handler runs on the handler
// threads, several at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace leakwatch::agent {

struct HttpLimits {
  size_t max_connections = 4096;
  size_t max_waiting_per_client = 64;
  std::chrono::milliseconds grace{1000};
  std::chrono::milliseconds request_timeout{3000};
  std::chrono::milliseconds write_timeout{10000};
  size_t max_request_line = 2048;
  size_t max_header_bytes = 8192;
  size_t max_requests_per_connection = 100;
  size_t handler_threads = 4;
  size_t max_pending_response_bytes = 32u << 20;
};

struct HttpPeer {
  std::string address;  // the client's IP address (IPv4-mapped IPv6 shown as IPv4)
  int port = 0;
  std::string local_address;
  int local_port = 0;
};

// One complete request: the bytes up to and including the blank line that ends its header.
// The handler fills `response` (status line, headers, body) and sets `close` when the
// connection must be closed after it.  `last` says this is the connection's last request.
using HttpHandler = std::function<void(std::string_view request, const HttpPeer& peer,
                                       bool last, std::string& response, bool& close)>;

struct HttpStats {
  uint64_t accepted = 0;
  uint64_t requests = 0;         // handed to the handler
  uint64_t rejected = 0;         // answered by the limits (400, 405, 414, 431)
  uint64_t timed_out = 0;        // closed waiting for a request or while writing
  uint64_t evicted = 0;          // closed to make room (per client or in all)
  uint64_t refused = 0;          // closed at once: every connection busy
  size_t open = 0;
};

class HttpConnections {
 public:
  // Listens on host:port (port 0: any free port) and starts the threads.
  [[nodiscard]] static Result<std::unique_ptr<HttpConnections>> start(const std::string& host,
                                                                      int port,
                                                                      const HttpLimits& limits,
                                                                      HttpHandler handler);
  ~HttpConnections();  // closes every connection and joins the threads
  HttpConnections(const HttpConnections&) = delete;
  HttpConnections& operator=(const HttpConnections&) = delete;

  int port() const;
  HttpStats stats() const;

  class Impl;

 private:
  explicit HttpConnections(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace leakwatch::agent
