// Layer 1's read of every process, /proc against the BPF task iterator, for 100, 1,000 and
// 10,000 sleeping processes (spawned here, on top of what the host already runs):
//
//   proc     list /proc, then /proc/PID/stat + status of every process (what the agent did
//            before the iterator, and still does as its fallback)
//   bpf      one read of the task iterator (src/bpf/task_iter.bpf.c): every process's
//            figures, threads folded in
//   table    the agent's process table around it (metrics::ProcessTable::refresh + a
//            sample of every process): what an `all: true` target costs to read
//   agent    a whole agent round with `all: true` (read + detection + snapshot), as context:
//            detection is per process whatever the source
// and first, detection alone at steady state (the agent's rounds above start with an empty
// history; the baseline's history is an hour of rates in production).
//
// CPU time of this thread per sample (user + system: the iterator's program runs inside
// read(), as system time of the reader); "core at 1 Hz" is that time over one second.
// Each sample is timed with CLOCK_THREAD_CPUTIME_ID (the scheduler's exact runtime);
// getrusage(RUSAGE_THREAD) over all rounds is printed beside it as a check (on this
// kernel its user/system split is tick-sampled, so a single short sample often reads 0).
// Wall time is not used: other work shares the CPUs.
//
//   bench_layer1_scan [--counts 100,1000,10000] [--rounds N] [--agent-rounds N] [--agent-only]
#include <signal.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "common/clock.h"
#include "metrics/process_collector.h"
#include "metrics/process_table.h"
#include "metrics/task_iter.h"

namespace {

using namespace leakwatch;

double rusage_cpu_s() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// Children parked in pause(), forked from a small helper so that each is a copy of a
// small address space.
std::vector<pid_t> spawn_sleepers(int n) {
  std::vector<pid_t> pids;
  pids.reserve(static_cast<size_t>(n));
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

struct Figure {
  double median_ms = 0, mean_ms = 0;
  double rusage_mean_ms = 0;  // getrusage over all rounds / rounds
  size_t processes = 0;       // per sample
};

template <typename Fn>
Figure time_samples(int rounds, Fn&& sample) {
  std::vector<double> ms;
  size_t n = sample();  // warm-up
  const double r0 = rusage_cpu_s();
  for (int r = 0; r < rounds; ++r) {
    const double c0 = thread_cpu_seconds();
    n = sample();
    const double c1 = thread_cpu_seconds();
    ms.push_back((c1 - c0) * 1e3);
  }
  const double r1 = rusage_cpu_s();
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  return {ms[ms.size() / 2], sum / static_cast<double>(ms.size()),
          (r1 - r0) * 1e3 / static_cast<double>(rounds), n};
}

void row(int spawned, const char* what, const Figure& f, int rounds) {
  std::printf("| %6d | %-10s | %7zu | %9.2f | %9.2f | %9.2f | %7.2f | %7.2f%% | %5d |\n", spawned,
              what, f.processes, f.median_ms, f.mean_ms, f.rusage_mean_ms,
              f.processes ? f.median_ms * 1e3 / static_cast<double>(f.processes) : 0.0,
              f.median_ms / 10.0, rounds);
  std::fflush(stdout);
}

Figure measure_agent(metrics::Layer1Source source, int rounds) {
  agent::AgentConfig c;
  c.listen.clear();
  c.reports_dir = "/tmp/leakwatch-bench-reports";
  c.targets.push_back({agent::TargetSpec::Kind::kAll, "", 0, "", 0});
  c.detection.source = source;
  c.detection.read_smaps = agent::DetectionConfig::Smaps::kOff;
  // Production's window shape: 13 samples in the rate window (10 s / 120 s by default).
  c.detection.interval_s = 1;
  c.detection.rate_window_s = 12.5;
  auto a = agent::Agent::create(c, agent::AgentOptions{});
  if (!a) {
    std::fprintf(stderr, "agent: %s\n", a.error().message.c_str());
    return {};
  }
  for (int i = 0; i < 13; ++i) (*a)->tick();  // fill the rate window
  return time_samples(rounds, [&] {
    (*a)->tick();
    return (*a)->layer1().processes;
  });
}

// Detection alone at steady state, one process: the default windows (rate 120 s,
// baseline 1 h, sustained 5 min) sampled at 1 Hz, after two hours of history, on a noisy
// flat series (most processes) or a leaking one.  CPU µs per GrowthDetector::add.
struct DetectorFigure {
  double us_per_add = 0;
  double kib = 0;  // heap held by one detector at steady state
};

DetectorFigure measure_detector(bool leaking) {
  {  // the fits' scratch space (one per thread, not per process) allocated first
    agent::GrowthDetector warm(agent::DetectionParams{});
    for (int i = 1; i <= 400; ++i)
      (void)warm.add(agent::MemoryPoint{double(i), 1e6 * i, 1e6, 1e6 * i, 1e6 * i}, {});
  }
  const size_t heap0 = ::mallinfo2().uordblks;
  agent::GrowthDetector d(agent::DetectionParams{});
  uint64_t x = 88172645463325252ull;
  auto noise = [&] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return static_cast<double>(x % 65536);
  };
  double t = 0;
  auto point = [&] {
    t += 1;
    const double anon = 50e6 + (leaking ? 2000 * t : 0) + noise();
    return agent::MemoryPoint{t, anon, 10e6 + noise(), anon + 10e6, 200e6};
  };
  for (int i = 0; i < 7200; ++i) (void)d.add(point(), {});
  constexpr int kCalls = 20000;
  const double c0 = thread_cpu_seconds();
  for (int i = 0; i < kCalls; ++i) (void)d.add(point(), {});
  DetectorFigure f;
  f.us_per_add = (thread_cpu_seconds() - c0) * 1e6 / kCalls;
  f.kib = static_cast<double>(::mallinfo2().uordblks - heap0) / 1024;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts{100, 1000, 10000};
  int rounds = 30, agent_rounds = 5;
  bool agent_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--counts") && i + 1 < argc) {
      counts.clear();
      for (char* tok = std::strtok(argv[++i], ","); tok; tok = std::strtok(nullptr, ","))
        counts.push_back(std::atoi(tok));
    } else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--agent-only")) {
      agent_only = true;  // the iterator's agent round alone (for profiling it)
    } else if (!std::strcmp(argv[i], "--agent-rounds") && i + 1 < argc) {
      agent_rounds = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--counts 100,1000,10000] [--rounds N] [--agent-rounds N] "
                   "[--agent-only]\n",
                   argv[0]);
      return 2;
    }
  }
  auto it = metrics::TaskIterator::Create();
  if (!it) {
    std::fprintf(stderr, "task iterator: %s\n", it.error().message.c_str());
    return 1;
  }
  std::printf("# layer 1, CPU per sample (getrusage RUSAGE_THREAD), RSS figure: %s (%s)\n",
              (*it)->rss_figure() == metrics::RssFigure::kSum ? "per-CPU sum" : "count",
              (*it)->figure_reason().c_str());
  for (bool leaking : {false, true}) {
    const DetectorFigure f = measure_detector(leaking);
    std::printf("# detection at steady state (1 Hz, default windows, %s series): %.2f us per "
                "process and sample, %.2f%% of a core for 10,000 processes at 1 Hz; %.1f KiB "
                "of history per process\n",
                leaking ? "leaking" : "flat noisy", f.us_per_add, f.us_per_add * 10000 / 1e6 * 100,
                f.kib);
  }
  std::printf("| spawned | read | processes | median ms | mean ms | getrusage mean ms | "
              "us/process | core at 1 Hz | rounds |\n");
  std::printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int n : counts) {
    std::vector<pid_t> kids = spawn_sleepers(n);
    if (static_cast<int>(kids.size()) != n) {
      reap(kids);
      return 1;
    }
    if (agent_only) {
      row(n, "agent/bpf", measure_agent(metrics::Layer1Source::kIterator, agent_rounds),
          agent_rounds);
      reap(kids);
      continue;
    }
    metrics::ProcessCollector collector("/proc", false);
    row(n, "proc", time_samples(rounds, [&] {
          auto pids = metrics::list_pids().value_or(std::vector<int>{});
          size_t ok = 0;
          for (int pid : pids) {
            auto s = collector.collect(pid, false);
            if (s && !s->kernel_thread) ++ok;
          }
          return ok;
        }), rounds);
    std::vector<metrics::TaskEntry> entries;
    row(n, "bpf", time_samples(rounds, [&] {
          (void)(*it)->scan(entries);
          return entries.size();
        }), rounds);
    metrics::ProcessTableOptions to;
    auto table = metrics::ProcessTable::create(to);
    if (!table || !(*table)->uses_iterator()) {
      std::fprintf(stderr, "process table without the iterator\n");
      reap(kids);
      return 1;
    }
    row(n, "table", time_samples(rounds, [&] {
          (*table)->refresh(true);
          size_t ok = 0;
          for (int pid : (*table)->pids())
            if (auto s = (*table)->sample(pid); s && !s->kernel_thread) ++ok;
          return ok;
        }), rounds);
    row(n, "agent/proc", measure_agent(metrics::Layer1Source::kProc, agent_rounds), agent_rounds);
    row(n, "agent/bpf", measure_agent(metrics::Layer1Source::kIterator, agent_rounds),
        agent_rounds);
    reap(kids);
  }
  return 0;
}
