#include "agent/http_connections.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "common/fd.h"
#include "common/log.h"

namespace leakwatch::agent {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kListenBacklog = 4096;  // the kernel caps it at net.core.somaxconn
constexpr int kAcceptsPerWakeup = 256;
constexpr int kTickMs = 100;          // timeouts are checked this often
constexpr auto kDrainTime = std::chrono::seconds(1);
// Descriptors the rest of the agent may need (/proc files, BPF objects, reports).
constexpr rlim_t kReservedDescriptors = 256;

// A response the limits give without bothering a handler.
std::string canned(int status, const char* reason, std::string_view body, bool allow_header) {
  return fmt::format("HTTP/1.1 {} {}\r\n{}Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                     status, reason, allow_header ? "Allow: GET, HEAD\r\n" : "", body.size(),
                     body);
}

bool iequals_prefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

// What the limits say about a complete header, or "" when it may go to the handler.
std::string check_request(std::string_view header, const HttpLimits& limits) {
  size_t eol = header.find('\n');
  std::string_view request_line = header.substr(0, eol);
  if (request_line.size() > limits.max_request_line)
    return canned(414, "URI Too Long", "request line too long\n", false);
  if (header.size() > limits.max_header_bytes)
    return canned(431, "Request Header Fields Too Large", "request header too large\n", false);
  std::string_view method = request_line.substr(0, request_line.find(' '));
  if (method != "GET" && method != "HEAD")
    return canned(405, "Method Not Allowed", "only GET and HEAD are served\n", true);
  // No route takes a body; a request announcing one would leave it to be read as the next
  // request.
  for (size_t pos = eol + 1; pos < header.size();) {
    size_t end = header.find('\n', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view line = header.substr(pos, end - pos);
    if (iequals_prefix(line, "transfer-encoding:"))
      return canned(400, "Bad Request", "request bodies are not accepted\n", false);
    if (iequals_prefix(line, "content-length:")) {
      std::string_view v = line.substr(15);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.remove_suffix(1);
      if (v != "0") return canned(400, "Bad Request", "request bodies are not accepted\n", false);
    }
    pos = end + 1;
  }
  return "";
}

// Where a complete header ends (just past its blank line), or npos.
size_t header_end(std::string_view in) {
  size_t crlf = in.find("\r\n\r\n");
  size_t lf = in.find("\n\n");
  size_t a = crlf == std::string_view::npos ? crlf : crlf + 4;
  size_t b = lf == std::string_view::npos ? lf : lf + 2;
  return std::min(a, b);
}

std::string address_text(const sockaddr_storage& sa, int& port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    port = ntohs(in->sin_port);
  } else if (sa.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    }
  }
  return buf;
}

}  // namespace

class HttpConnections::Impl {
 public:
  Impl(const HttpLimits& limits, HttpHandler handler)
      : limits_(limits), handler_(std::move(handler)) {}
  ~Impl() { stop(); }

  Result<void> listen(const std::string& host, int port);
  void run_threads();
  void stop();
  int port() const { return port_; }
  HttpStats stats() const {
    std::lock_guard lock(stats_mu_);
    return stats_;
  }

 private:
  // kDraining: the response is written and our side shut down; what the client still
  // sends is read and dropped until it closes (or a second passes), so that closing with
  // unread bytes does not reset the connection before the client has read the response.
  enum class State { kWaiting, kHandling, kWriting, kDraining };
  struct Conn {
    uint64_t id = 0;
    UniqueFd fd;
    HttpPeer peer;
    State state = State::kWaiting;
    std::string in;            // read, not yet handed over (a pipelined request stays here)
    std::string out;           // the response being written
    size_t out_pos = 0;
    size_t out_accounted = 0;  // its bytes in pending_bytes_
    Clock::time_point since;   // ready for a request since (accept or last response)
    Clock::time_point deadline;
    size_t requests = 0;
    bool close_after_write = false;
    bool peer_done = false;    // the client shut down its side after its request
  };
  struct Job {
    uint64_t id;
    std::string request;
    HttpPeer peer;
    bool last;
  };
  struct Done {
    uint64_t id;
    std::string response;
    bool close;
  };

  void loop();
  void worker();
  void accept_all();
  void on_event(uint64_t id, uint32_t events);
  void read_from(Conn& c);
  void dispatch(Conn& c);
  void start_writing(Conn& c, std::string response, bool close, bool accounted);
  void write_to(Conn& c);
  void drain(Conn& c);
  void finish_response(Conn& c);
  void take_results();
  void sweep();
  bool evict_for_room();
  void enforce_client(const std::string& client);
  void close_conn(uint64_t id);
  void set_events(Conn& c, uint32_t events);
  void release_pending(Conn& c);
  void count(uint64_t HttpStats::*field) {
    std::lock_guard lock(stats_mu_);
    ++(stats_.*field);
  }

  const HttpLimits limits_;
  const HttpHandler handler_;
  size_t max_connections_ = 0;
  UniqueFd listen_fd_;
  UniqueFd epoll_fd_;
  UniqueFd wake_fd_;  // eventfd: results are ready, or stop
  int port_ = 0;
  std::thread loop_thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};
  bool accept_paused_ = false;
  Clock::time_point accept_resume_{};

  // Loop thread only.
  std::unordered_map<uint64_t, Conn> conns_;
  std::map<std::string, size_t> per_client_;  // open connections by client address
  uint64_t next_id_ = 2;                      // 0: the listening socket, 1: wake_fd_

  // Shared with the handler threads.
  std::mutex mu_;
  std::condition_variable work_cv_;   // jobs queued, pending bytes released, or stop
  std::deque<Job> jobs_;
  std::vector<Done> done_;
  size_t pending_bytes_ = 0;          // responses made and not yet written

  mutable std::mutex stats_mu_;
  HttpStats stats_;
};

Result<void> HttpConnections::Impl::listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
    return fail("cannot listen on {}:{}: {}", host, port, ::gai_strerror(rc));
  int last_errno = 0;
  for (addrinfo* a = found; a != nullptr && !listen_fd_.valid(); a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         a->ai_protocol));
    if (!fd.valid()) continue;
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) == 0 &&
        ::listen(fd.get(), kListenBacklog) == 0) {
      listen_fd_ = std::move(fd);
    } else {
      last_errno = errno;
    }
  }
  ::freeaddrinfo(found);
  if (!listen_fd_.valid())
    return fail("cannot listen on {}:{} ({})", host, port,
                last_errno ? std::strerror(last_errno) : "no usable address");
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  address_text(sa, port_);

  // Connections need descriptors: stay below the limit, whatever HttpLimits asks.
  max_connections_ = limits_.max_connections;
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    rlim_t usable = nofile.rlim_cur > 2 * kReservedDescriptors ? nofile.rlim_cur - kReservedDescriptors
                                                               : nofile.rlim_cur / 2;
    max_connections_ = std::min<size_t>(max_connections_, usable);
  }

  epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  wake_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epoll_fd_.valid() || !wake_fd_.valid()) return fail_errno("http: epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, listen_fd_.get(), &ev);
  ev.data.u64 = 1;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev);
  return {};
}

void HttpConnections::Impl::run_threads() {
  for (size_t i = 0; i < std::max<size_t>(1, limits_.handler_threads); ++i)
    workers_.emplace_back([this] { worker(); });
  loop_thread_ = std::thread([this] { loop(); });
}

void HttpConnections::Impl::stop() {
  if (stop_.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    work_cv_.notify_all();
  }
  if (wake_fd_.valid()) {
    uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
  }
  if (loop_thread_.joinable()) loop_thread_.join();
  for (auto& w : workers_)
    if (w.joinable()) w.join();
  conns_.clear();
}

void HttpConnections::Impl::worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      // Responses wait to be written: making more would only grow the memory they hold.
      work_cv_.wait(lock, [&] {
        return stop_ || (!jobs_.empty() && pending_bytes_ < limits_.max_pending_response_bytes);
      });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Done d{job.id, {}, false};
    handler_(job.request, job.peer, job.last, d.response, d.close);
    {
      std::lock_guard lock(mu_);
      pending_bytes_ += d.response.size();
      done_.push_back(std::move(d));
    }
    uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
  }
}

void HttpConnections::Impl::loop() {
  std::vector<epoll_event> events(256);
  auto next_sweep = Clock::now() + std::chrono::milliseconds(kTickMs);
  while (!stop_) {
    int n = ::epoll_wait(epoll_fd_.get(), events.data(), static_cast<int>(events.size()), kTickMs);
    if (n < 0 && errno != EINTR) {
      log::error("http: epoll_wait: {}", std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t id = events[i].data.u64;
      if (id == 0) {
        accept_all();
      } else if (id == 1) {
        uint64_t v;
        (void)!::read(wake_fd_.get(), &v, sizeof v);
        take_results();
      } else {
        on_event(id, events[i].events);
      }
    }
    auto now = Clock::now();
    if (accept_paused_ && now >= accept_resume_) {
      accept_paused_ = false;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = 0;
      ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, listen_fd_.get(), &ev);
    }
    if (now >= next_sweep) {
      sweep();
      next_sweep = now + std::chrono::milliseconds(kTickMs);
    }
  }
  // Stopping: the connections close with the loop.
  conns_.clear();
  per_client_.clear();
}

void HttpConnections::Impl::accept_all() {
  for (int i = 0; i < kAcceptsPerWakeup; ++i) {
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    int fd = ::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: make room, or stop accepting for a tick rather than spin.
        if (!evict_for_room()) {
          ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, listen_fd_.get(), nullptr);
          accept_paused_ = true;
          accept_resume_ = Clock::now() + std::chrono::milliseconds(kTickMs);
          return;
        }
        continue;
      }
      return;  // EAGAIN: nothing more
    }
    UniqueFd owned(fd);
    if (conns_.size() >= max_connections_ && !evict_for_room()) {
      count(&HttpStats::refused);
      continue;  // every connection is busy with a request: this one is closed
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn c;
    c.id = next_id_++;
    c.peer.address = address_text(sa, c.peer.port);
    sockaddr_storage local{};
    socklen_t llen = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0)
      c.peer.local_address = address_text(local, c.peer.local_port);
    c.since = Clock::now();
    c.deadline = c.since + limits_.request_timeout;
    c.fd = std::move(owned);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = c.id;
    if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) continue;
    std::string client = c.peer.address;
    conns_.emplace(c.id, std::move(c));
    count(&HttpStats::accepted);
    if (++per_client_[client] > limits_.max_waiting_per_client) enforce_client(client);
  }
}

// Closes the connection that has waited longest for a request, of any client, if one has
// waited at least `grace`; false when there is none (every connection is busy or new).
bool HttpConnections::Impl::evict_for_room() {
  const auto oldest_allowed = Clock::now() - limits_.grace;
  uint64_t victim = 0;
  Clock::time_point best = Clock::time_point::max();
  for (const auto& [id, c] : conns_)
    if (c.state == State::kWaiting && c.since <= oldest_allowed && c.since < best) {
      best = c.since;
      victim = id;
    }
  if (victim == 0) return false;
  close_conn(victim);
  count(&HttpStats::evicted);
  return true;
}

// Above max_waiting_per_client connections waiting for a request, the client's
// longest-waiting ones go (those that have waited at least `grace`).
void HttpConnections::Impl::enforce_client(const std::string& client) {
  std::vector<std::pair<Clock::time_point, uint64_t>> waiting;
  for (const auto& [id, c] : conns_)
    if (c.state == State::kWaiting && c.peer.address == client) waiting.emplace_back(c.since, id);
  if (waiting.size() <= limits_.max_waiting_per_client) return;
  std::sort(waiting.begin(), waiting.end());
  const auto oldest_allowed = Clock::now() - limits_.grace;
  size_t excess = waiting.size() - limits_.max_waiting_per_client;
  for (size_t i = 0; i < waiting.size() && excess > 0; ++i) {
    if (waiting[i].first > oldest_allowed) break;
    close_conn(waiting[i].second);
    count(&HttpStats::evicted);
    --excess;
  }
}

void HttpConnections::Impl::on_event(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  if (events & (EPOLLERR | EPOLLHUP)) {
    close_conn(id);
    return;
  }
  if (c.state == State::kWaiting && (events & (EPOLLIN | EPOLLRDHUP))) read_from(c);
  else if (c.state == State::kWriting && (events & EPOLLOUT)) write_to(c);
  else if (c.state == State::kDraining && (events & (EPOLLIN | EPOLLRDHUP))) drain(c);
}

void HttpConnections::Impl::drain(Conn& c) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_conn(c.id);  // end of stream, or an error
    return;
  }
}

void HttpConnections::Impl::read_from(Conn& c) {
  const uint64_t id = c.id;
  char buf[4096];
  for (;;) {
    // Never more than a header's worth (plus one byte, to see it is too long).
    size_t room = limits_.max_header_bytes + 1 > c.in.size() ? limits_.max_header_bytes + 1 - c.in.size() : 0;
    if (room == 0) break;
    ssize_t n = ::recv(c.fd.get(), buf, std::min(room, sizeof buf), 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      if (header_end(c.in) != std::string::npos) break;
      continue;
    }
    if (n == 0) {
      c.peer_done = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    close_conn(id);
    return;
  }
  dispatch(c);
}

// A complete request goes to a handler (or gets the limits' answer); an incomplete one
// waits, unless it is already too long or the client has stopped sending.
void HttpConnections::Impl::dispatch(Conn& c) {
  size_t end = header_end(c.in);
  if (end == std::string::npos) {
    size_t eol = c.in.find('\n');
    if ((eol == std::string::npos ? c.in.size() : eol) > limits_.max_request_line) {
      count(&HttpStats::rejected);
      start_writing(c, canned(414, "URI Too Long", "request line too long\n", false), true, false);
    } else if (c.in.size() > limits_.max_header_bytes) {
      count(&HttpStats::rejected);
      start_writing(c, canned(431, "Request Header Fields Too Large", "request header too large\n", false),
                    true, false);
    } else if (c.peer_done) {
      close_conn(c.id);
    }
    return;
  }
  std::string request = c.in.substr(0, end);
  c.in.erase(0, end);
  if (std::string refusal = check_request(request, limits_); !refusal.empty()) {
    count(&HttpStats::rejected);
    start_writing(c, std::move(refusal), true, false);
    return;
  }
  ++c.requests;
  const bool last = c.requests >= limits_.max_requests_per_connection || c.peer_done;
  c.state = State::kHandling;
  set_events(c, 0);
  count(&HttpStats::requests);
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(Job{c.id, std::move(request), c.peer, last});
  }
  work_cv_.notify_one();
}

void HttpConnections::Impl::take_results() {
  std::vector<Done> done;
  {
    std::lock_guard lock(mu_);
    done.swap(done_);
  }
  for (Done& d : done) {
    auto it = conns_.find(d.id);
    if (it == conns_.end()) {
      // The client went away while its request was handled.
      std::lock_guard lock(mu_);
      pending_bytes_ -= d.response.size();
      work_cv_.notify_all();
      continue;
    }
    Conn& c = it->second;
    bool close = d.close || c.requests >= limits_.max_requests_per_connection || c.peer_done;
    if (d.response.empty()) {
      close_conn(c.id);
      continue;
    }
    start_writing(c, std::move(d.response), close, true);
  }
}

void HttpConnections::Impl::start_writing(Conn& c, std::string response, bool close,
                                          bool accounted) {
  c.out = std::move(response);
  c.out_pos = 0;
  c.out_accounted = accounted ? c.out.size() : 0;
  c.close_after_write = close;
  c.state = State::kWriting;
  c.deadline = Clock::now() + limits_.write_timeout;
  write_to(c);
}

void HttpConnections::Impl::write_to(Conn& c) {
  const uint64_t id = c.id;
  while (c.out_pos < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_events(c, EPOLLOUT);
      return;
    }
    close_conn(id);
    return;
  }
  finish_response(c);
}

void HttpConnections::Impl::finish_response(Conn& c) {
  release_pending(c);
  c.out.clear();
  c.out.shrink_to_fit();
  if (c.close_after_write) {
    ::shutdown(c.fd.get(), SHUT_WR);
    c.state = State::kDraining;
    c.in.clear();
    c.in.shrink_to_fit();
    c.deadline = Clock::now() + kDrainTime;
    set_events(c, EPOLLIN | EPOLLRDHUP);
    drain(c);
    return;
  }
  c.state = State::kWaiting;
  c.since = Clock::now();
  c.deadline = c.since + limits_.request_timeout;
  set_events(c, EPOLLIN | EPOLLRDHUP);
  if (header_end(c.in) != std::string::npos) dispatch(c);  // a pipelined request
}

void HttpConnections::Impl::release_pending(Conn& c) {
  if (c.out_accounted == 0) return;
  {
    std::lock_guard lock(mu_);
    pending_bytes_ -= c.out_accounted;
  }
  c.out_accounted = 0;
  work_cv_.notify_all();
}

void HttpConnections::Impl::sweep() {
  const auto now = Clock::now();
  std::vector<uint64_t> expired;
  std::map<std::string, size_t> waiting;
  for (const auto& [id, c] : conns_) {
    if (c.state != State::kHandling && now >= c.deadline) expired.push_back(id);
    else if (c.state == State::kWaiting) ++waiting[c.peer.address];
  }
  for (uint64_t id : expired) {
    auto it = conns_.find(id);
    bool draining = it != conns_.end() && it->second.state == State::kDraining;
    close_conn(id);
    if (!draining) count(&HttpStats::timed_out);
  }
  for (const auto& [client, n] : waiting)
    if (n > limits_.max_waiting_per_client) enforce_client(client);
  std::lock_guard lock(stats_mu_);
  stats_.open = conns_.size();
}

void HttpConnections::Impl::close_conn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  release_pending(c);
  // A request still with a handler: its result is dropped when it arrives.
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
  if (auto pc = per_client_.find(c.peer.address); pc != per_client_.end() && --pc->second == 0)
    per_client_.erase(pc);
  conns_.erase(it);
}

void HttpConnections::Impl::set_events(Conn& c, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = c.id;
  ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev);
}

HttpConnections::HttpConnections(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpConnections::~HttpConnections() { impl_->stop(); }
int HttpConnections::port() const { return impl_->port(); }
HttpStats HttpConnections::stats() const { return impl_->stats(); }

Result<std::unique_ptr<HttpConnections>> HttpConnections::start(const std::string& host,
                                                                int port,
                                                                const HttpLimits& limits,
                                                                HttpHandler handler) {
  auto impl = std::make_unique<Impl>(limits, std::move(handler));
  if (auto r = impl->listen(host, port); !r) return std::unexpected(r.error());
  impl->run_threads();
  return std::unique_ptr<HttpConnections>(new HttpConnections(std::move(impl)));
}

}  // namespace leakwatch::agent
