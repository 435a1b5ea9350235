#include "session/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string_view>

namespace leakwatch::session {

Result<std::vector<std::string>> split_command(const std::string& command) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < command.size(); i++) {
    char c = command[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < command.size()) {
        cur += command[++i];
      } else {
        cur += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < command.size()) {
      cur += command[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) return fail("-c: unterminated quote in command: {}", command);
  if (in_word) words.push_back(std::move(cur));
  if (words.empty()) return fail("-c: empty command");
  return words;
}

namespace {

// NAME=value with NAME a shell identifier.
bool is_assignment(std::string_view w) {
  size_t eq = w.find('=');
  if (eq == 0 || eq == std::string_view::npos) return false;
  if (std::isdigit(static_cast<unsigned char>(w[0]))) return false;
  return std::all_of(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(eq), [](unsigned char c) {
    return std::isalnum(c) || c == '_';
  });
}

bool is_env(std::string_view w) {
  size_t slash = w.rfind('/');
  return (slash == std::string_view::npos ? w : w.substr(slash + 1)) == "env";
}

}  // namespace

CommandEnvironment take_environment(std::vector<std::string> words) {
  CommandEnvironment c;
  size_t i = 0;
  for (;;) {
    while (i < words.size() && is_assignment(words[i])) c.changes.push_back(words[i++]);
    if (i >= words.size() || !is_env(words[i])) break;
    for (++i; i < words.size(); ++i) {
      const std::string& w = words[i];
      if (w == "-u" && i + 1 < words.size()) c.changes.push_back(words[++i]);
      else if (w.starts_with("--unset=")) c.changes.push_back(w.substr(8));
      else if (w == "--") { ++i; break; }
      else if (w.starts_with("-")) return {std::move(words), {}};  // -i, -C, -S: env runs
      else break;
    }
  }
  if (i >= words.size()) return {std::move(words), {}};  // `env A=B`: prints, runs nothing
  c.argv.assign(std::make_move_iterator(words.begin() + static_cast<std::ptrdiff_t>(i)),
                std::make_move_iterator(words.end()));
  return c;
}

std::vector<std::string> apply_command_environment(std::vector<std::string> words) {
  CommandEnvironment c = take_environment(std::move(words));
  for (const auto& change : c.changes) {
    size_t eq = change.find('=');
    if (eq == std::string::npos) ::unsetenv(change.c_str());
    else ::setenv(change.substr(0, eq).c_str(), change.c_str() + eq + 1, 1);
  }
  return std::move(c.argv);
}

Result<std::string> resolve_executable(const std::string& name) {
  auto executable = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) {
    if (executable(name)) return name;
    return fail("-c: cannot execute {}: {}", name,
                ::access(name.c_str(), F_OK) == 0 ? "permission denied" : "no such file");
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string cand = (dir.empty() ? "." : dir) + "/" + name;
    if (executable(cand)) return cand;
    start = end + 1;
  }
  return fail("-c: command not found: {}", name);
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const std::string& path,
                                                          const std::vector<std::string>& argv,
                                                          const std::vector<std::string>& env) {
  int go[2], err[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return fail_errno("pipe");
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(go[0]);
    ::close(go[1]);
    return fail_errno("pipe");
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  // The environment is built before fork: the child may only make async-signal-safe calls.
  std::vector<char*> cenv;
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e; e++) {
    std::string_view var(*e);
    bool replaced = false;
    for (const auto& o : env) {
      size_t eq = o.find('=');
      if (var.size() > eq && var.substr(0, eq + 1) == std::string_view(o).substr(0, eq + 1))
        replaced = true;
    }
    if (!replaced) cenv.push_back(*e);
  }
  cenv.push_back(nullptr);

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork");
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    // Dies with leakwatch, whatever ends it (SIGKILL included).  The flag survives exec
    // (not of a set-user-ID program).  If leakwatch died before the prctl, the child was
    // reparented already and the signal will never come: getppid() tells.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(127);
    ::close(go[1]);
    ::close(err[0]);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    char c;
    ssize_t n;
    do n = ::read(go[0], &c, 1); while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(127);  // leakwatch went away before attaching: do not run untraced
    ::execve(path.c_str(), cargv.data(), cenv.data());
    int e = errno;
    (void)!::write(err[1], &e, sizeof(e));
    ::_exit(127);
  }
  std::unique_ptr<ChildProcess> cp(new ChildProcess());
  cp->pid_ = pid;
  cp->path_ = path;
  ::close(go[0]);
  ::close(err[1]);
  cp->go_.reset(go[1]);
  cp->error_.reset(err[0]);
  // Trace only the exit event (and exec, which a seized tracee reports instead of SIGTRAP).
  cp->traced_ = ::ptrace(PTRACE_SEIZE, pid, nullptr,
                         reinterpret_cast<void*>(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC)) == 0;
  return cp;
}

Result<void> ChildProcess::release() {
  char c = 1;
  if (::write(go_.get(), &c, 1) != 1) return fail_errno("cannot start the command");
  go_.reset();
  int e = 0;
  ssize_t n;
  do n = ::read(error_.get(), &e, sizeof(e)); while (n < 0 && errno == EINTR);
  error_.reset();
  if (n == static_cast<ssize_t>(sizeof(e))) {
    kill_and_reap();
    return fail("-c: cannot execute {}: {}", path_, std::strerror(e));
  }
  return {};
}

bool ChildProcess::poll(const std::function<void()>& on_exiting) {
  while (!exited_) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG | __WALL);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      exited_ = true;  // ECHILD: nothing left to wait for
      break;
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      exited_ = true;
      status_ = st;
      break;
    }
    if (!WIFSTOPPED(st)) continue;
    int event = st >> 16;
    if (event == PTRACE_EVENT_EXIT) {
      if (on_exiting) on_exiting();
      ::ptrace(PTRACE_CONT, pid_, nullptr, nullptr);
    } else if (event == PTRACE_EVENT_EXEC) {
      ::ptrace(PTRACE_CONT, pid_, nullptr, nullptr);
    } else if (event == PTRACE_EVENT_STOP) {
      ::ptrace(PTRACE_LISTEN, pid_, nullptr, nullptr);  // group stop: stay stopped
    } else {
      // A signal for the child: deliver it unchanged.
      ::ptrace(PTRACE_CONT, pid_, nullptr, reinterpret_cast<void*>(static_cast<long>(WSTOPSIG(st))));
    }
  }
  return exited_;
}

void ChildProcess::kill_and_reap() {
  if (exited_ || pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, __WALL) < 0 && errno == EINTR) {
  }
  exited_ = true;
  status_ = st;
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

}  // namespace leakwatch::session
