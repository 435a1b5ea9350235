#include "support/inject_run.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "common/procfs.h"
#include "report/json_writer.h"

namespace leakwatch::testing {
namespace {

std::string status_field(int pid, const std::string& key) { return process_status_field(pid, key); }

}  // namespace

InjectRun inject_and_trace(Proc& target, const std::vector<std::string>& flags,
                           const std::function<void()>& drive) {
  static std::atomic<int> runs{0};
  InjectRun run;
  std::string out = temp_path(fmt::format("inject-{}.json", runs++));
  std::vector<std::string> argv = {leakwatch(), "memleak",  "-p",   std::to_string(target.pid()),
                                   "--inject",  "-o",       "0",    "--format",
                                   "json",      "--output", out};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("600");
  Proc lw(argv);
  if (!lw.wait_for("Attaching to pid", std::chrono::seconds(90))) {
    lw.signal(SIGINT);
    lw.wait();
    run.err = lw.err();
    ADD_FAILURE() << "leakwatch did not attach: " << run.err;
    return run;
  }
  drive();
  lw.signal(SIGINT);
  int st = lw.wait(std::chrono::seconds(120));
  run.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  run.err = lw.err();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto text = read_file(out);
  if (!text) return run;
  auto rep = report::read_json(*text);
  if (!rep) return run;
  run.report = std::move(*rep);
  run.parsed = true;
  return run;
}

RunResult run_leakwatch_inject(int pid, const std::vector<std::string>& wrapper) {
  std::vector<std::string> argv = wrapper;
  argv.insert(argv.end(), {leakwatch(), "memleak", "-p", std::to_string(pid), "--inject",
                           "--duration", "1"});
  return run_argv(argv, std::chrono::seconds(90));
}

void expect_target_intact(Proc& target) {
  target.write("check\n");
  auto line = target.wait_for("ok ", std::chrono::seconds(30));
  EXPECT_TRUE(line.has_value()) << "the program's own check failed: " << target.out();
  target.write("quit\n");
  auto done = target.wait_for("done", std::chrono::seconds(60));
  ASSERT_TRUE(done.has_value()) << target.out() << target.err();
  EXPECT_NE(done->find("intact"), std::string::npos) << *done;
  int st = target.wait();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st << ": " << target.err();
}

void expect_untouched(Proc& target, bool answers_check) {
  EXPECT_EQ(status_field(target.pid(), "TracerPid"), "0");
  std::ifstream maps(fmt::format("/proc/{}/maps", target.pid()));
  std::stringstream ss;
  ss << maps.rdbuf();
  EXPECT_EQ(ss.str().find("leakwatch-preload"), std::string::npos) << "library left behind";
  if (answers_check) {
    target.write("check\n");
    EXPECT_TRUE(target.wait_for("ok ", std::chrono::seconds(30)).has_value())
        << "the program stopped working: " << target.out() << target.err();
  } else {
    EXPECT_EQ(::kill(target.pid(), 0), 0) << "the program is gone";
  }
}

char process_state(int pid) {
  auto s = status_field(pid, "State");
  return s.empty() ? '?' : s[0];
}

}  // namespace leakwatch::testing
