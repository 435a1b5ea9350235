// --cgroup: every process under a cgroup v2 directory is traced, also one that joins after
// attach; a process outside it is not.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "report/json_writer.h"
#include "support/memleak_run.h"

namespace leakwatch::testing {
namespace {

std::string cgroup2_mount() {
  std::ifstream in("/proc/mounts");
  std::string dev, dir, type, rest;
  while (in >> dev >> dir >> type && std::getline(in, rest))
    if (type == "cgroup2") return dir;
  return "";
}

void join(const std::string& cg, pid_t pid) { std::ofstream(cg + "/cgroup.procs") << pid << "\n"; }

TEST(MemleakCgroup, TracesMembersIncludingLateJoinersOnly) {
  if (!have_bpf()) GTEST_SKIP() << "needs root and /sys/kernel/btf/vmlinux";
  std::string root = cgroup2_mount();
  ASSERT_FALSE(root.empty()) << "no cgroup2 mount";
  std::string cg = root + "/leakwatch-test-" + std::to_string(::getpid());
  ASSERT_EQ(::mkdir(cg.c_str(), 0755), 0) << cg;

  Proc early({fixture("ml_functions"), "wait"});
  Proc outside({fixture("ml_functions"), "wait"});
  ASSERT_TRUE(early.wait_for("ready"));
  ASSERT_TRUE(outside.wait_for("ready"));
  join(cg, early.pid());

  std::string out = temp_path("cgroup.json");
  Proc lw({leakwatch(), "memleak", "--cgroup", cg, "-o", "0", "--format", "json", "--output", out, "60"});
  ASSERT_TRUE(lw.wait_for("Attaching to cgroup " + cg)) << lw.err();

  Proc late({fixture("ml_functions"), "wait"});
  ASSERT_TRUE(late.wait_for("ready"));
  join(cg, late.pid());
  ::usleep(1500 * 1000);  // leakwatch scans the cgroup every second

  for (Proc* p : {&early, &late, &outside}) p->write("go\n");
  for (Proc* p : {&early, &late, &outside}) ASSERT_TRUE(p->wait_for("done"));
  lw.signal(SIGTERM);
  lw.wait();
  for (Proc* p : {&early, &late, &outside}) {
    p->close_stdin();
    p->wait();
  }
  ::rmdir(cg.c_str());

  auto text = read_file(out);
  ASSERT_TRUE(text) << lw.err();
  auto rep = report::read_json(*text);
  ASSERT_TRUE(rep) << rep.error().message;
  EXPECT_EQ(rep->target.cgroup, cg);
  auto stacks = stacks_in(*rep, "leak_malloc");
  ASSERT_EQ(stacks.size(), 2u) << "one stack per member process\n" << describe(*rep);
  for (const auto* s : stacks) EXPECT_EQ(s->bytes.sampled, 4444) << describe(*rep);
}

}  // namespace
}  // namespace leakwatch::testing
