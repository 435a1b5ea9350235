// The measured overhead (probe/cost_sampler.h): an untraced target has no sample at the
// probes, and a traced one's sampled overhead agrees with the slowdown it really has.
//
// Slowdown, measured: CPU time per malloc/free pair of tests/fixtures/rl_busy (its own
// pair counter over its CPU time from /proc), untraced then traced by `leakwatch memleak -p`
// (every call, the worst case).  Per unit of CPU, not of wall time, so the other work of a
// shared host does not move it.  Tolerance: the 2x either way.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <thread>

#include "cli/overhead_estimate.h"
#include "common/procfs.h"
#include "probe/cost_sampler.h"
#include "support/memleak_run.h"
#include "support/reliability.h"

namespace leakwatch::testing {
namespace {
using namespace std::chrono_literals;

double cpu_s(pid_t pid) {
  auto text = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return -1;
  auto st = parse_proc_stat(*text);
  if (!st) return -1;
  return static_cast<double>(st->utime_ticks + st->stime_ticks) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double pairs_done(Proc& busy) {
  busy.write("count\n");
  auto line = busy.wait_for("count ");
  return line ? std::stod(line->substr(6)) : -1;
}

// CPU seconds per pair over `span`.
double cpu_per_pair(Proc& busy, std::chrono::milliseconds span) {
  const double p0 = pairs_done(busy), c0 = cpu_s(busy.pid());
  std::this_thread::sleep_for(span);
  const double p1 = pairs_done(busy), c1 = cpu_s(busy.pid());
  return p1 > p0 ? (c1 - c0) / (p1 - p0) : -1;
}

TEST(CostSampler, AnUntracedTargetHasNoSampleAtTheProbes) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and BTF";
  Proc busy({fixture("rl_busy"), "1", "200"});
  ASSERT_TRUE(busy.wait_for("ready"));
  auto sampler = probe::CostSampler::Create(busy.pid(), cli::kernel_trap_ranges());
  ASSERT_TRUE(sampler) << sampler.error().message;
  std::this_thread::sleep_for(1s);
  auto split = (*sampler)->read({});
  ASSERT_TRUE(split) << split.error().message;
  // ~200 samples a second of a busy thread; the host's other work may take some of it.
  EXPECT_GE(split->total(), 60u);
  EXPECT_EQ(split->at_probes, 0u);
  EXPECT_EQ(split->dropped, 0u);
  // Drained: the next read adds to it.
  std::this_thread::sleep_for(300ms);
  auto again = (*sampler)->read({});
  ASSERT_TRUE(again);
  EXPECT_GT(again->total(), split->total());
  busy.write("quit\n");
  busy.wait();
}

TEST(CostSampler, MeasuredOverheadIsWithinTwiceTheRealOne) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and BTF";
  // WORK 200: ~250 ns of work per pair, an allocation-heavy service's proportions.
  Proc busy({fixture("rl_busy"), "1", "200"});
  ASSERT_TRUE(busy.wait_for("ready"));
  std::this_thread::sleep_for(200ms);
  const double untraced = cpu_per_pair(busy, 1500ms);
  ASSERT_GT(untraced, 0);

  Proc lw({leakwatch(), "memleak", "-p", std::to_string(busy.pid()), "-v", "1", "4"});
  ASSERT_TRUE(lw.wait_for("Attaching")) << lw.err();
  std::this_thread::sleep_for(500ms);
  const double traced = cpu_per_pair(busy, 2000ms);
  ASSERT_GT(traced, 0);
  int st = lw.wait(30s);
  ASSERT_TRUE(WIFEXITED(st)) << lw.err();
  busy.write("quit\n");
  busy.wait();

  const double real_percent = 100.0 * (traced - untraced) / untraced;
  // The last interval's note: "measured overhead X% of the target's work ...".
  std::smatch m;
  double measured = -1;
  std::string text = lw.out();
  const std::regex re("measured overhead ([0-9.]+)%");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    measured = std::stod((*it)[1]);
  ASSERT_GT(measured, 0) << "no measured overhead in the output:\n" << text << lw.err();
  record_figure("untraced_cpu_ns_per_pair", untraced * 1e9);
  record_figure("traced_cpu_ns_per_pair", traced * 1e9);
  record_figure("real_overhead_percent", real_percent);
  record_figure("measured_overhead_percent", measured);
  EXPECT_GE(measured, real_percent / 2) << text;
  EXPECT_LE(measured, real_percent * 2) << text;
}

}  // namespace
}  // namespace leakwatch::testing
