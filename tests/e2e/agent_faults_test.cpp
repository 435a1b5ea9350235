// The agent under faults and load: a reports_dir that fills up (ENOSPC on a small tmpfs)
// or turns read-only, and 100 targets triggering at once.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "support/agent_run.h"
#include "support/memleak_run.h"
#include "support/reliability.h"
#include "support/scenarios.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

class AgentFaults : public BpfTest {};

TEST_F(AgentFaults, HundredTargetsTriggeringAtOnce) {
  agent_many_targets(100, 20);
}

// A small tmpfs mounted for the test (unmounted at the end, also on failure).
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& size) : dir_(dir) {
    fs::create_directories(dir);
    ok_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~TmpfsMount() {
    if (ok_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  bool remount(bool read_only) {
    return ::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | (read_only ? MS_RDONLY : 0),
                   nullptr) == 0;
  }

 private:
  std::string dir_;
  bool ok_ = false;
};

// Fills the file system holding `dir` with one file, to the last byte.
void fill(const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  std::string block(4096, 'x');
  while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
  }
  // Partial blocks: the last few bytes.
  out.clear();
  while (out.put('x')) out.flush();
}

std::string index_text(const std::string& reports) {
  return read_file(reports + "/index.json").value_or("");
}

// index.json parses, is an array, and every entry's files exist.
void expect_valid_index(const std::string& reports) {
  auto text = read_file(reports + "/index.json");
  ASSERT_TRUE(text) << "index.json unreadable";
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_array()) << *text;
  for (const json& e : j) {
    const std::string id = e.value("id", "");
    ASSERT_FALSE(id.empty());
    for (const json& f : e["files"]) {
      EXPECT_TRUE(fs::is_regular_file(reports + "/" + id + "/" + f.get<std::string>()))
          << id << "/" << f << " listed but missing";
    }
  }
}

TEST_F(AgentFaults, ReportsDirFullOrReadOnlyIsCountedAndSurvived) {
  const std::string dir = temp_path("reports-fs");
  TmpfsMount mnt(dir, "1m");
  if (!mnt.ok()) GTEST_SKIP() << "cannot mount a tmpfs here";
  Proc grower({fixture("agent_grower"), "mleak", "512"});
  ASSERT_TRUE(grower.wait_for("ready"));
  AgentRun agent = start_agent(retriggering_config(grower.pid(), 0.5, 3), dir);
  auto errors = [&] { return agent.metric("leakwatch_report_errors_total"); };
  auto stored = [&] {
    auto text = read_file(dir + "/index.json");
    if (!text) return size_t{0};
    json j = json::parse(*text, nullptr, false);
    return j.is_array() ? j.size() : size_t{0};
  };
  ASSERT_TRUE(eventually([&] { return stored() >= 1; }, 60s)) << agent.proc->err();

  // Full: the reports that follow cannot be written.
  fill(dir + "/filler");
  const std::string index_full = index_text(dir);
  const double errors_before_full = errors();
  ASSERT_TRUE(eventually([&] { return errors() >= errors_before_full + 2; }, 30s))
      << "store failures not counted\n" << agent.proc->err();
  ASSERT_TRUE(resources_of(agent.proc->pid()).alive) << "agent died on ENOSPC\n" << agent.proc->err();
  expect_valid_index(dir);
  EXPECT_EQ(index_text(dir), index_full) << "index changed while the disk was full";

  // Space again: reports are stored again.
  fs::remove(dir + "/filler");
  ASSERT_TRUE(eventually([&] { return index_text(dir) != index_full; }, 30s))
      << "no report stored after space came back\n" << agent.proc->err();
  expect_valid_index(dir);

  // Read-only: the same.
  ASSERT_TRUE(mnt.remount(true));
  const std::string index_ro = index_text(dir);
  const double errors_before_ro = errors();
  ASSERT_TRUE(eventually([&] { return errors() >= errors_before_ro + 2; }, 30s))
      << "store failures not counted\n" << agent.proc->err();
  ASSERT_TRUE(resources_of(agent.proc->pid()).alive) << "agent died on EROFS\n" << agent.proc->err();
  expect_valid_index(dir);
  EXPECT_EQ(index_text(dir), index_ro);
  ASSERT_TRUE(mnt.remount(false));
  ASSERT_TRUE(eventually([&] { return index_text(dir) != index_ro; }, 30s))
      << agent.proc->err();
  expect_valid_index(dir);

  const double failures_counted = errors();
  EXPECT_EQ(stop_agent(agent), 0) << agent.proc->err();
  const std::string& err = agent.proc->err();
  size_t failures = 0;
  for (size_t pos = 0; (pos = err.find("not stored", pos)) != std::string::npos; pos++) failures++;
  EXPECT_GE(failures, 2u) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_NE(err.find("Read-only file system"), std::string::npos) << err;
  EXPECT_EQ(static_cast<double>(failures), failures_counted) << "every failure logged and counted";
  record_figure("store_failures_counted", failures_counted);
  grower.close_stdin();
}

}  // namespace
}  // namespace leakwatch::testing
