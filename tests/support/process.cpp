#include "support/process.h"

#include <pthread.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace leakwatch::testing {
namespace {
using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}
}  // namespace

Proc::Proc(const std::vector<std::string>& argv) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::setpgid(0, 0);  // signals sent to the test runner's group do not reach it
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execvp(a[0], a.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  in_ = in[1];
  out_ = out[0];
  errfd_ = err[0];
  ::fcntl(errfd_, F_SETFL, O_NONBLOCK);
}

Proc::~Proc() {
  if (!exited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
  for (int fd : {in_, out_, errfd_})
    if (fd >= 0) ::close(fd);
}

void Proc::drain_stderr() {
  char b[4096];
  ssize_t n;
  while ((n = ::read(errfd_, b, sizeof b)) > 0) err_.append(b, static_cast<size_t>(n));
}

std::optional<std::string> Proc::read_line(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return line;
    }
    if (out_ < 0) return std::nullopt;
    pollfd pfd[2] = {{out_, POLLIN, 0}, {errfd_, POLLIN, 0}};
    int r = ::poll(pfd, 2, remaining_ms(deadline));
    if (r == 0) return std::nullopt;
    if (r < 0 && errno != EINTR) return std::nullopt;
    drain_stderr();
    if (pfd[0].revents & (POLLIN | POLLHUP)) {
      char b[4096];
      ssize_t n = ::read(out_, b, sizeof b);
      if (n <= 0) {
        ::close(out_);
        out_ = -1;
        if (!buf_.empty()) {
          std::string line = std::move(buf_);
          buf_.clear();
          return line;
        }
        return std::nullopt;
      }
      buf_.append(b, static_cast<size_t>(n));
      out_all_.append(b, static_cast<size_t>(n));
    }
  }
}

std::optional<std::string> Proc::wait_for(const std::string& needle,
                                          std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (auto line = read_line(std::chrono::milliseconds(remaining_ms(deadline)))) {
    if (line->find(needle) != std::string::npos) return line;
  }
  return std::nullopt;
}

void Proc::write(const std::string& s) {
  if (in_ < 0) return;
  // A program that has exited (a test may kill it on purpose) has closed its end: the write
  // fails with EPIPE instead of SIGPIPE ending the test binary.  SIGPIPE is blocked around
  // the write and a pending one is taken, so children keep the default disposition.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  const bool failed = ::write(in_, s.data(), s.size()) < 0 && errno == EPIPE;
  if (failed) {
    timespec zero{};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Proc::close_stdin() {
  if (in_ >= 0) ::close(in_);
  in_ = -1;
}

void Proc::signal(int sig) {
  if (!exited_) ::kill(pid_, sig);
}

int Proc::wait(std::chrono::milliseconds timeout) {
  if (exited_) return status_;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    // keep draining so a chatty child never blocks on a full pipe
    while (read_line(std::chrono::milliseconds(0))) {
    }
    drain_stderr();
    pid_t r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) break;
    if (Clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
      break;
    }
    ::usleep(10000);
  }
  exited_ = true;
  while (read_line(std::chrono::milliseconds(200))) {
  }
  drain_stderr();
  return status_;
}

RunResult run_argv(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  Proc p(argv);
  p.close_stdin();
  int st = p.wait(timeout);
  RunResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = p.out();
  r.err = p.err();
  return r;
}

std::string fixture(const std::string& name) { return std::string(LEAKWATCH_FIXTURE_DIR) + "/" + name; }
std::string leakwatch() { return LEAKWATCH_BINARY; }

std::string temp_path(const std::string& name) {
  static std::string dir = [] {
    char tmpl[] = "/tmp/leakwatch-test-XXXXXX";
    char* d = ::mkdtemp(tmpl);
    return std::string(d ? d : "/tmp");
  }();
  static int n = 0;
  return dir + "/" + std::to_string(++n) + "-" + name;
}

bool have_bpf() {
  struct stat st;
  return ::geteuid() == 0 && ::stat("/sys/kernel/btf/vmlinux", &st) == 0;
}

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

}  // namespace leakwatch::testing
