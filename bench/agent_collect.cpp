// Layer-1 collection cost per process: how long the agent takes to read one process's
// figures (/proc/PID/stat + status, and smaps_rollup for PSS/USS), for 1, 100 and 1000
// sleeping child processes, plus one larger process (smaps_rollup walks page tables, so its
// cost grows with RSS), and a whole agent round (collection + detection) over all of them.
//
//   bench_agent_collect [--quick]
//
// Prints ns per process, the median of repeated rounds: CPU time of the collecting thread
// (user + system: what the agent costs the machine; steady on a busy host) and wall-clock
// time (what a round takes; inflated when other work competes for the CPUs).  Children are
// forked copies of this program (small: a few MiB, ~25 mappings) parked in pause().
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "metrics/process_collector.h"

using leakwatch::metrics::ProcessCollector;
using leakwatch::metrics::monotonic_seconds;

namespace {

std::vector<pid_t> spawn_sleepers(int n) {
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    pid_t p = ::fork();
    if (p == 0) {
      for (;;) ::pause();
    }
    if (p < 0) {
      std::perror("fork");
      break;
    }
    pids.push_back(p);
  }
  return pids;
}

void reap(const std::vector<pid_t>& pids) {
  for (pid_t p : pids) ::kill(p, SIGKILL);
  for (pid_t p : pids) ::waitpid(p, nullptr, 0);
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Cost {
  double cpu_ns = -1;   // per process
  double wall_ns = -1;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times `rounds` calls of round() (after one warm-up call), per process.
template <typename Fn>
Cost time_rounds(size_t processes, int rounds, Fn&& round) {
  std::vector<double> cpu, wall;
  for (int r = 0; r < rounds + 1; ++r) {
    double c0 = thread_cpu_seconds(), w0 = monotonic_seconds();
    if (!round()) return {};
    double c1 = thread_cpu_seconds(), w1 = monotonic_seconds();
    if (r == 0) continue;
    cpu.push_back((c1 - c0) * 1e9 / static_cast<double>(processes));
    wall.push_back((w1 - w0) * 1e9 / static_cast<double>(processes));
  }
  return {median(cpu), median(wall)};
}

// Collecting every pid once.
Cost measure(const std::vector<pid_t>& pids, bool smaps, int rounds) {
  ProcessCollector c("/proc", smaps);
  return time_rounds(pids.size(), rounds, [&] {
    for (pid_t p : pids) {
      auto s = c.collect(p);
      if (!s) {
        std::fprintf(stderr, "collect %d: %s\n", p, s.error().message.c_str());
        return false;
      }
    }
    return true;
  });
}

// One agent round (discovery via comm, collection, detection) over the children.
Cost measure_agent(const std::vector<pid_t>& pids, int rounds) {
  using namespace leakwatch::agent;
  AgentConfig c;
  c.listen.clear();
  c.reports_dir = "/tmp/leakwatch-bench-reports";
  c.detection.interval_s = 0.01;
  c.detection.rate_window_s = 0.1;
  for (pid_t p : pids) c.targets.push_back({TargetSpec::Kind::kPid, "", p, "", 0});
  auto a = Agent::create(c, AgentOptions{});
  if (!a) {
    std::fprintf(stderr, "agent: %s\n", a.error().message.c_str());
    return {};
  }
  return time_rounds(pids.size(), rounds, [&] {
    (*a)->tick();
    return true;
  });
}

void row(const std::string& n, const char* what, Cost c, int rounds) {
  std::printf("%-10s %-28s %12.0f %12.0f %8d\n", n.c_str(), what, c.cpu_ns, c.wall_ns, rounds);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::printf("# layer-1 collection cost (ns per process, median of rounds)\n");
  std::printf("%-10s %-28s %12s %12s %8s\n", "processes", "what", "cpu ns/proc", "wall ns/proc",
              "rounds");
  for (int n : {1, 100, 1000}) {
    std::vector<pid_t> pids = spawn_sleepers(n);
    if (static_cast<int>(pids.size()) != n) {
      reap(pids);
      return 1;
    }
    const int rounds = quick ? 3 : std::max(5, 20000 / n);
    const std::string label = std::to_string(n);
    row(label, "stat+status", measure(pids, false, rounds), rounds);
    row(label, "stat+status+smaps_rollup", measure(pids, true, rounds), rounds);
    const int agent_rounds = std::max(3, rounds / 4);
    row(label, "agent round (+detection)", measure_agent(pids, agent_rounds), agent_rounds);
    reap(pids);
  }

  // A larger process: 1 GiB of touched anonymous memory in 4 KiB pages.
  const size_t big = size_t{1} << 30;
  pid_t p = ::fork();
  if (p == 0) {
    char* m = static_cast<char*>(::mmap(nullptr, big, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ::madvise(m, big, MADV_NOHUGEPAGE);
    for (size_t i = 0; i < big; i += 4096) m[i] = 1;
    for (;;) ::pause();
  }
  ProcessCollector probe("/proc", false);
  for (int i = 0; i < 200; ++i) {  // wait until it has touched its memory
    auto s = probe.collect(p);
    if (s && s->rss >= big) break;
    ::usleep(50000);
  }
  row("1 (1 GiB)", "stat+status", measure({p}, false, 50), 50);
  row("1 (1 GiB)", "stat+status+smaps_rollup", measure({p}, true, 50), 50);
  // The agent reads a costly smaps_rollup less often (1 ms budget): its average per round.
  row("1 (1 GiB)", "agent round (+detection)", measure_agent({p}, 60), 60);
  reap({p});
  return 0;
}
