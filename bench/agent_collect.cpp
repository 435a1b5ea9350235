// Layer-1 collection cost per process: how long the agent takes to read one process's
// figures (/proc/PID/stat + status, and smaps_rollup for PSS/USS), for 1, 100 and 1000
// sleeping child processes, plus one larger process (smaps_rollup walks page tables, so its
// cost grows with RSS), and a whole agent round (collection + detection) over all of them.
//
//   bench_agent_collect [--quick]
//
// Prints ns per process over repeated rounds (median and mean): CPU time of the collecting thread
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
  double cpu_ns = -1;       // per process, median round
  double cpu_mean_ns = -1;  // per process, mean round (counts the occasional costly one)
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
  double sum = 0;
  for (double c : cpu) sum += c;
  return {median(cpu), sum / static_cast<double>(cpu.size()), median(wall)};
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

// One agent round (collection, detection, snapshot) over the children.  Rounds are spaced
// so that the rate window holds 13 samples, as production's defaults do (10 s samples,
// 120 s window); the first 13 fill it and are not measured.
Cost measure_agent(const std::vector<pid_t>& pids, int rounds) {
  using namespace leakwatch::agent;
  AgentConfig c;
  c.listen.clear();
  c.reports_dir = "/tmp/leakwatch-bench-reports";
  for (pid_t p : pids) c.targets.push_back({TargetSpec::Kind::kPid, "", p, "", 0});
  auto probe = Agent::create(c, AgentOptions{});
  if (!probe) {
    std::fprintf(stderr, "agent: %s\n", probe.error().message.c_str());
    return {};
  }
  double w0 = monotonic_seconds();
  (*probe)->tick();
  const double spacing = std::max(0.01, 1.5 * (monotonic_seconds() - w0));
  c.detection.interval_s = spacing;
  c.detection.rate_window_s = 12.5 * spacing;
  auto a = Agent::create(c, AgentOptions{}).value();
  std::vector<double> cpu, wall;
  for (int i = 0; i < 13 + rounds; ++i) {
    const double start = monotonic_seconds(), c0 = thread_cpu_seconds();
    a->tick();
    const double c1 = thread_cpu_seconds(), end = monotonic_seconds();
    if (i >= 13) {
      cpu.push_back((c1 - c0) * 1e9 / static_cast<double>(pids.size()));
      wall.push_back((end - start) * 1e9 / static_cast<double>(pids.size()));
    }
    const double left = start + spacing - monotonic_seconds();
    if (left > 0) ::usleep(static_cast<useconds_t>(left * 1e6));
  }
  double sum = 0;
  for (double v : cpu) sum += v;
  return {median(cpu), sum / static_cast<double>(cpu.size()), median(wall)};
}

void row(const std::string& n, const char* what, Cost c, int rounds) {
  std::printf("%-10s %-26s %12.0f %12.0f %12.0f %7d\n", n.c_str(), what, c.cpu_ns, c.cpu_mean_ns,
              c.wall_ns, rounds);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  std::printf("# layer-1 collection cost, ns per process\n");
  std::printf("%-10s %-26s %12s %12s %12s %7s\n", "processes", "what", "cpu median", "cpu mean",
              "wall median", "rounds");
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
    const int agent_rounds = quick ? 3 : std::max(10, 200 / n);
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
