// The allocation trace has one implementation: `leakwatch memleak -p` and the agent's
// investigation run the same session, so for the same target and options they report the
// same stacks.  Both trace tests/fixtures/ml_functions.c at once, then are compared.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <map>
#include <thread>

#include "cli/memleak_investigator.h"
#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

// Innermost function -> {bytes, allocations}, over every stack.
std::map<std::string, std::pair<double, double>> by_function(const report::Report& r) {
  std::map<std::string, std::pair<double, double>> out;
  for (const auto& s : r.stacks) {
    auto& v = out[s.frames.empty() ? "?" : s.frames[0].function];
    v.first += s.bytes.estimate;
    v.second += s.count.estimate;
  }
  return out;
}

TEST(MemleakSession, InvestigationAndMemleakPidReportTheSameStacks) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  Proc target({fixture("ml_functions"), "wait"});
  ASSERT_TRUE(target.wait_for("ready"));

  // memleak -p with what an investigation uses: exact, -o 500, --unwind auto.
  std::string out = temp_path("memleak-p.json");
  Proc lw({leakwatch(), "memleak", "-p", std::to_string(target.pid()), "--duration", "6",
           "--format", "json", "--output", out});
  ASSERT_TRUE(lw.wait_for("Attaching to pid")) << lw.err();

  agent::InvestigationRequest req;
  req.pid = target.pid();
  req.sampling = {report::SamplingMode::kExact, 1};
  req.duration_s = 6;
  // The fixture's burst (about 28,000 calls in a few milliseconds of its own work) costs it
  // several times that work under uprobes: a real budget stops the trace right after the
  // leaks, before they are older than -o 500, and the report is empty.  This test compares
  // the stacks; the guard has its own tests.
  req.overhead_budget_percent = 1e6;
  req.target = "pid";
  req.reason = "test";
  std::atomic<bool> stop{false};
  std::optional<Result<agent::InvestigationResult>> inv;
  std::thread investigation([&] { inv = cli::MemleakInvestigator().run(req, stop); });
  // Both attached (the investigation's session is live well within a second, after the
  // trap-cost calibration), then the fixture leaks once, in front of both.
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  target.write("go\n");
  ASSERT_TRUE(target.wait_for("done"));
  investigation.join();
  int st = lw.wait();
  target.close_stdin();
  target.wait();

  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << lw.err();
  auto text = read_file(out);
  ASSERT_TRUE(text) << text.error().message;
  auto cli_report = report::read_json(*text);
  ASSERT_TRUE(cli_report) << cli_report.error().message;
  ASSERT_TRUE(inv && *inv) << (inv ? (*inv).error().message : "no result");
  const report::Report& agent_report = (**inv).report;

  expect_ml_functions_leaks(*cli_report);
  expect_ml_functions_leaks(agent_report);
  EXPECT_EQ(by_function(agent_report), by_function(*cli_report))
      << "agent:\n" << describe(agent_report) << "memleak -p:\n" << describe(*cli_report);
  EXPECT_EQ(agent_report.sampling, cli_report->sampling);
  // The same frames, stack by stack.
  ASSERT_EQ(agent_report.stacks.size(), cli_report->stacks.size());
  for (size_t i = 0; i < agent_report.stacks.size(); i++) {
    const auto& a = agent_report.stacks[i].frames;
    const auto& c = cli_report->stacks[i].frames;
    ASSERT_EQ(a.size(), c.size()) << i;
    for (size_t j = 0; j < a.size(); j++) EXPECT_EQ(a[j].function, c[j].function) << i << "/" << j;
  }
}

}  // namespace
}  // namespace leakwatch::testing
