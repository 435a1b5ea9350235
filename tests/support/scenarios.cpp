#include "support/scenarios.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/agent_run.h"
#include "support/memleak_run.h"
#include "support/reliability.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Bytes and count of the report's stacks whose innermost frame is exactly `fn` (C name).
Totals exact_totals(const report::Report& r, const std::string& fn) {
  Totals t;
  for (const auto& s : r.stacks) {
    if (s.frames.empty() || s.frames[0].function != fn) continue;
    t.bytes += s.bytes.sampled;
    t.count += s.count.sampled;
  }
  return t;
}

double lost_total(const report::Report& r) {
  double n = 0;
  for (const auto& [name, v] : r.lost) n += static_cast<double>(v);
  return n;
}

// Ends a `memleak -p` run with SIGINT and reads its JSON report.
std::optional<report::Report> finish_memleak(Proc& lw, const std::string& json_path,
                                             int* exit_code = nullptr) {
  lw.signal(SIGINT);
  int st = lw.wait(60s);
  if (exit_code) *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  EXPECT_TRUE(WIFEXITED(st)) << lw.err();
  auto text = read_file(json_path);
  EXPECT_TRUE(text) << "no report written\n" << lw.err();
  if (!text) return std::nullopt;
  auto rep = report::read_json(*text);
  EXPECT_TRUE(rep) << (rep ? "" : rep.error().message);
  if (!rep) return std::nullopt;
  return std::move(*rep);
}

}  // namespace

void memleak_attach_detach_cycles(int cycles) {
  Proc target({fixture("rl_busy"), "1"});
  ASSERT_TRUE(target.wait_for("ready"));
  auto cycle = [&] {
    auto r = run_argv({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "--duration",
                       "0.2", "-o", "0"},
                      60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Attaching to pid"), std::string::npos) << r.out << r.err;
    return r.exit_code == 0;
  };
  // Warm-up: the first attach maps the kernel's [uprobes] page into the target for good.
  const int warmup = std::min(3, cycles);
  for (int i = 0; i < warmup; i++) ASSERT_TRUE(cycle());
  const ProcResources before = resources_of(target.pid());
  const auto start = Clock::now();
  int failures = 0;
  for (int i = warmup; i < cycles; i++) failures += cycle() ? 0 : 1;
  const double elapsed = seconds_since(start);
  // The target's working set is constant; let its allocator settle before measuring.
  std::this_thread::sleep_for(200ms);
  const ProcResources after = resources_of(target.pid());
  EXPECT_EQ(failures, 0);
  EXPECT_TRUE(after.alive) << "target died";
  EXPECT_EQ(after.fds, before.fds) << "descriptors of the target grew";
  EXPECT_EQ(after.mappings, before.mappings) << "mappings of the target grew";
  // malloc's working set here is under 1 MiB; 4 MiB is far below one leaked page per cycle
  // over 1000 cycles and far above the allocator's own jitter.
  EXPECT_LE(after.rss_bytes, before.rss_bytes + 4 * 1024 * 1024)
      << before.rss_bytes << " -> " << after.rss_bytes;
  target.write("count\n");
  auto line = target.wait_for("count");
  ASSERT_TRUE(line) << "target stopped answering";
  target.write("quit\n");
  int st = target.wait(10s);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  record_figure("cycles", cycles);
  record_figure("seconds_per_cycle", elapsed / std::max(1, cycles - warmup));
  record_figure("target_rss_growth_bytes",
                static_cast<double>(after.rss_bytes) - static_cast<double>(before.rss_bytes));
  record_figure("target_fd_growth", static_cast<double>(after.fds) - static_cast<double>(before.fds));
  record_figure("target_mapping_growth",
                static_cast<double>(after.mappings) - static_cast<double>(before.mappings));
}

void agent_investigation_cycles(int investigations) {
  // 512 KiB/s through malloc: the trigger (>64 KB/s over a 1 s window, held 0.5 s) holds
  // all along, so with no cooldown one investigation follows the other.
  Proc grower({fixture("agent_grower"), "mleak", "512"});
  ASSERT_TRUE(grower.wait_for("ready"));
  AgentRun agent = start_agent(retriggering_config(grower.pid(), 0.3, 5));
  const pid_t apid = agent.proc->pid();

  // The lowest figures seen between two points: an investigation in flight holds BPF
  // objects and buffers, so only the minimum over a window compares between windows.
  struct Window {
    ProcResources low{UINT64_MAX, SIZE_MAX, SIZE_MAX, true};
    // The BPF objects held at the quietest moment: layer 1's task iterator (held for the
    // agent's life, the same objects throughout) and nothing of an investigation.
    size_t bpf_low = SIZE_MAX;
    BpfHeld bpf_low_held;
    void sample(pid_t pid) {
      ProcResources r = resources_of(pid);
      low.rss_bytes = std::min(low.rss_bytes, r.rss_bytes);
      low.fds = std::min(low.fds, r.fds);
      BpfHeld h = bpf_held_by(pid);
      const size_t n = h.progs.size() + h.links.size() + h.maps.size();
      if (n < bpf_low) bpf_low = n, bpf_low_held = std::move(h);
    }
  };
  const int first_from = std::min(5, investigations / 4), first_to = first_from + 10;
  const int last_from = std::max(first_to, investigations - 10);
  Window first, last;
  double done = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(30 + investigations * 6);
  // When each window began and ended (investigations per second in each: a cost that
  // grows with the number of investigations done shows as a slower last window).
  Clock::time_point first_t0{}, first_t1{}, last_t0{};
  while (done < investigations && Clock::now() < deadline) {
    done = agent.metric("leakwatch_investigations_total");
    if (done >= first_from && first_t0 == Clock::time_point{}) first_t0 = Clock::now();
    if (done >= first_to && first_t1 == Clock::time_point{}) first_t1 = Clock::now();
    if (done >= last_from && last_t0 == Clock::time_point{}) last_t0 = Clock::now();
    for (int i = 0; i < 10; i++) {
      if (done >= first_from && done < first_to) first.sample(apid);
      if (done >= last_from) last.sample(apid);
      std::this_thread::sleep_for(20ms);
    }
  }
  const auto last_t1 = Clock::now();
  const double elapsed = seconds_since(start);
  EXPECT_GE(done, investigations) << "investigations done in time";
  const double stored = agent.metric("leakwatch_reports_written_total");
  const double errors = agent.metric("leakwatch_report_errors_total");
  EXPECT_EQ(stop_agent(agent), 0) << agent.proc->err().substr(0, 4000);
  grower.close_stdin();
  EXPECT_EQ(last.low.fds, first.low.fds) << "the agent's descriptors grew";
  // Between investigations the agent holds the same BPF objects (by kernel id) in the last
  // window as in the first: an investigation's program, link or map left behind would be a
  // new id.
  EXPECT_EQ(last.bpf_low_held.progs, first.bpf_low_held.progs) << "BPF programs held between investigations";
  EXPECT_EQ(last.bpf_low_held.links, first.bpf_low_held.links) << "BPF links held between investigations";
  EXPECT_EQ(last.bpf_low_held.maps, first.bpf_low_held.maps) << "BPF maps held between investigations";
  EXPECT_LE(first.bpf_low, 8u) << "more than layer 1's iterator held between investigations";
  // A leak of 10 KiB per investigation would add 10 MiB over 1000 of them; the agent's
  // bounded histories and allocator caches stay well under 8 MiB of drift.
  if (!kSanitizedBuild) {
    EXPECT_LE(last.low.rss_bytes, first.low.rss_bytes + 8 * 1024 * 1024)
        << first.low.rss_bytes << " -> " << last.low.rss_bytes;
  }
  EXPECT_EQ(errors, 0);
  record_figure("investigations", done);
  record_figure("seconds_per_investigation", elapsed / std::max(1.0, done));
  auto per = [](Clock::time_point a, Clock::time_point b, double n) {
    return a == Clock::time_point{} || b == Clock::time_point{} || n <= 0
               ? 0.0
               : std::chrono::duration<double>(b - a).count() / n;
  };
  record_figure("seconds_per_investigation_first_window", per(first_t0, first_t1, first_to - first_from));
  record_figure("seconds_per_investigation_last_window", per(last_t0, last_t1, done - last_from));
  record_figure("reports_written", stored);
  record_figure("agent_rss_first_window_bytes", static_cast<double>(first.low.rss_bytes));
  record_figure("agent_rss_growth_bytes", static_cast<double>(last.low.rss_bytes) -
                                              static_cast<double>(first.low.rss_bytes));
  record_figure("bpf_objects_between_investigations", static_cast<double>(last.bpf_low));
  record_figure("agent_fd_growth",
                static_cast<double>(last.low.fds) - static_cast<double>(first.low.fds));
}

void fork_exec_loop(int cycles) {
  Proc target({fixture("rl_forkexec"), std::to_string(cycles)});
  ASSERT_TRUE(target.wait_for("ready"));
  const std::string out = temp_path("forkexec.json");
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "--format",
           "json", "--output", out, "3600"});
  ASSERT_TRUE(lw.wait_for("Attaching")) << lw.err();
  const auto start = Clock::now();
  target.write("go\n");
  auto done = target.wait_for("done", std::chrono::seconds(60 + cycles / 5));
  ASSERT_TRUE(done) << "target did not finish";
  EXPECT_EQ(*done, "done 0") << "children that did not exit 0";
  auto rep = finish_memleak(lw, out);
  ASSERT_TRUE(rep);
  Totals t = exact_totals(*rep, "leak_per_cycle");
  EXPECT_EQ(t.count, cycles) << describe(*rep);
  EXPECT_EQ(t.bytes, cycles * 1234.0) << describe(*rep);
  // The children's allocations are theirs, not the target's: nothing else is outstanding.
  EXPECT_EQ(lost_total(*rep), 0) << describe(*rep);
  target.close_stdin();
  EXPECT_EQ(WEXITSTATUS(target.wait()), 0);
  record_figure("fork_exec_cycles", cycles);
  record_figure("seconds", seconds_since(start));
  record_figure("leak_counted", t.count);
}

void dlopen_dlclose_loop(int cycles) {
  Proc target({fixture("rl_dlopen"), std::to_string(cycles)});
  ASSERT_TRUE(target.wait_for("ready"));
  const std::string out = temp_path("dlopen.json");
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "--format",
           "json", "--output", out, "3600"});
  ASSERT_TRUE(lw.wait_for("Attaching")) << lw.err();
  target.write("go\n");
  auto done = target.wait_for("done", std::chrono::seconds(60 + cycles / 5));
  ASSERT_TRUE(done);
  EXPECT_EQ(*done, "done 0") << "the library must be unmapped at the end for this test";
  auto rep = finish_memleak(lw, out);
  ASSERT_TRUE(rep);
  // Every 555-byte block is the leak.  Its innermost frame lies in the library, which was
  // unmapped before the report: named when leakwatch read the maps while it was loaded,
  // else left unknown -- never given another object's name.
  double count_555 = 0, named = 0, ctor_blocks = 0;
  for (const auto& s : rep->stacks) {
    if (s.count.sampled > 0 && s.bytes.sampled == 555 * s.count.sampled) {
      count_555 += s.count.sampled;
      ASSERT_FALSE(s.frames.empty());
      const report::Frame& f = s.frames[0];
      if (f.function == "rl_alloc_leak") named += s.count.sampled;
      else EXPECT_TRUE(f.function.empty()) << "misattributed: " << f.function << " [" << f.module << "]";
    }
    if (s.count.sampled > 0 && s.bytes.sampled == 4096 * s.count.sampled) ctor_blocks += s.count.sampled;
  }
  EXPECT_EQ(count_555, cycles) << describe(*rep);
  // The library frees in its destructor what its constructor allocated.
  EXPECT_EQ(ctor_blocks, 0) << describe(*rep);
  EXPECT_EQ(lost_total(*rep), 0) << describe(*rep);
  target.close_stdin();
  EXPECT_EQ(WEXITSTATUS(target.wait()), 0);
  record_figure("dlopen_cycles", cycles);
  record_figure("leak_counted", count_555);
  record_figure("leak_named", named);
}

void cross_thread_frees(int threads, int pairs_per_thread) {
  Proc target({fixture("rl_threads"), std::to_string(threads), std::to_string(pairs_per_thread)});
  ASSERT_TRUE(target.wait_for("ready"));
  const std::string out = temp_path("threads.json");
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "-o", "0", "--format",
           "json", "--output", out, "3600"});
  ASSERT_TRUE(lw.wait_for("Attaching")) << lw.err();
  const auto start = Clock::now();
  target.write("go\n");
  ASSERT_TRUE(target.wait_for("done", std::chrono::seconds(120 + pairs_per_thread / 500)));
  const double traced_s = seconds_since(start);
  auto rep = finish_memleak(lw, out);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->sampling.mode, report::SamplingMode::kExact);
  const double lost = lost_total(*rep);
  Totals leak = exact_totals(*rep, "leak_in_worker");
  Totals churn = exact_totals(*rep, "produce_block");
  // Exact mode: every block handed to another thread was freed there.  Anything still
  // outstanding from the churn must be explained by a counted loss (a free whose event
  // was dropped), and the known leak by nothing else.
  EXPECT_LE(churn.count, lost) << describe(*rep);
  EXPECT_LE(std::abs(leak.count - threads * 10.0), lost) << describe(*rep);
  if (lost == 0) {
    EXPECT_EQ(churn.count, 0) << describe(*rep);
    EXPECT_EQ(leak.bytes, threads * 10 * 3333.0) << describe(*rep);
  }
  target.close_stdin();
  EXPECT_EQ(WEXITSTATUS(target.wait()), 0);
  record_figure("threads", threads);
  record_figure("pairs", static_cast<double>(threads) * pairs_per_thread);
  record_figure("traced_seconds", traced_s);
  record_figure("churn_outstanding", churn.count);
  record_figure("leak_counted", leak.count);
  record_figure("lost_total", lost);
}

void agent_many_targets(int targets, double seconds) {
  // A name of their own: other programs (other test runs) may be called agent_grower.
  const std::string exe = temp_path("rlg" + std::to_string(::getpid() % 1000000));
  // temp_path numbers its files ("1-rlg..."): the program's name is the file's.
  const std::string name = fs::path(exe).filename().string();
  fs::copy_file(fixture("agent_grower"), exe);
  fs::permissions(exe, fs::perms::owner_all);
  std::vector<std::unique_ptr<Proc>> growers;
  for (int i = 0; i < targets; i++) {
    growers.push_back(std::make_unique<Proc>(std::vector<std::string>{exe, "leak", "64"}));
  }
  for (auto& g : growers) ASSERT_TRUE(g->wait_for("ready"));
  AgentRun agent = start_agent(
      "targets:\n  - comm: " + name + "\n"
      "memleak_sampling:\n  enabled: true\n  max_concurrent: 2\n"
      "  trigger_conditions:\n    - memory_growth_rate: \">16KB/s\"\n"
      "  sampling_config:\n    default_sample_rate: 100\n    duration_limit: 1\n"
      "    growth_seconds: 0\n"
      "detection:\n  interval: 500ms\n  rate_window: 2s\n  sustained_for: 1s\n"
      "reports:\n  max_count: 20\n");
  const pid_t apid = agent.proc->pid();
  const auto start = Clock::now();
  double max_running = 0, max_scrape_s = 0, watched = 0;
  uint64_t max_rss = 0;
  double collections_first = agent.metric("leakwatch_agent_collections_total");
  while (seconds_since(start) < seconds) {
    const auto t0 = Clock::now();
    std::string text = agent.metrics();
    max_scrape_s = std::max(max_scrape_s, seconds_since(t0));
    ASSERT_FALSE(text.empty()) << "metrics did not answer";
    max_running = std::max(max_running, metric_sum(text, "leakwatch_investigations_running"));
    watched = std::max(watched, metric_sum(text, "leakwatch_target_processes"));
    max_rss = std::max(max_rss, resources_of(apid).rss_bytes);
    std::this_thread::sleep_for(250ms);
  }
  const std::string text = agent.metrics();
  const double triggers = metric_sum(text, "leakwatch_triggers_total");
  const double investigations = metric_sum(text, "leakwatch_investigations_total");
  const double collections = metric_sum(text, "leakwatch_agent_collections_total") - collections_first;
  const double errors = metric_sum(text, "leakwatch_report_errors_total");
  EXPECT_EQ(stop_agent(agent), 0) << agent.proc->err().substr(0, 4000);
  for (auto& g : growers) g->close_stdin();
  growers.clear();
  EXPECT_EQ(watched, targets);
  EXPECT_GE(triggers, targets) << "every growing process triggered";
  EXPECT_LE(max_running, 2) << "max_concurrent holds";
  EXPECT_GE(investigations, 1);
  EXPECT_EQ(errors, 0);
  // Collection keeps its pace (every 500 ms) while investigations run: at least half of it.
  EXPECT_GE(collections, seconds / 0.5 / 2) << "collections in " << seconds << " s";
  // /metrics answers throughout.  Its latency is recorded; the bound is loose because the
  // test machine's two CPUs are shared (the HTTP server's own limits are tested elsewhere).
  EXPECT_LT(max_scrape_s, 5.0) << "/metrics slower than 5 s";
  record_figure("targets", targets);
  record_figure("seconds", seconds);
  record_figure("triggers", triggers);
  record_figure("investigations", investigations);
  record_figure("max_investigations_running", max_running);
  record_figure("collections", collections);
  record_figure("max_scrape_seconds", max_scrape_s);
  record_figure("agent_max_rss_bytes", static_cast<double>(max_rss));
}

}  // namespace leakwatch::testing
