// place_library: the copy of the sampling library in another mount namespace's /tmp, and the
// links and foreign directories a process's users could plant there.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "inject/target_checks.h"

namespace leakwatch::inject {
namespace {

namespace fs = std::filesystem;

// A process in a mount namespace of its own, with a private /tmp and `hidden` covered (so
// that it does not see the library there); `setup` runs in it first (as sh).
class Namespaced {
 public:
  Namespaced(const std::string& hidden, const std::string& setup, const std::string& ready) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string script = fmt::format(
          "mount -t tmpfs none /tmp && mount -t tmpfs none {} && {} && touch {} && exec sleep 60",
          hidden, setup, ready);
      ::execlp("unshare", "unshare", "-m", "--propagation", "private", "sh", "-c",
               script.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 500 && !fs::exists(ready); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ready_ = fs::exists(ready);
  }
  ~Namespaced() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool ready() const { return ready_; }
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  bool ready_ = false;
};

class InjectPlace : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fmt::format("/var/tmp/leakwatch-place-test-{}", ::getpid());
    fs::create_directories(dir_ + "/lib");
    fs::create_directories(dir_ + "/victim");
    library_ = dir_ + "/lib/libfake-preload.so";
    std::ofstream(library_) << "not really a library, but bytes to copy\n";
    std::string bytes = *read_file(library_);
    uint64_t h = 14695981039346656037ull;  // FNV-1a 64, the name place_library gives its copy
    for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
    copy_dir_ = fmt::format("/tmp/leakwatch-{:016x}", h);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_, library_, copy_dir_;
};

TEST_F(InjectPlace, CopiedOnceWithItsBitsAndReused) {
  Namespaced p(dir_ + "/lib", "true", dir_ + "/ready");
  ASSERT_TRUE(p.ready());
  std::string how;
  auto path = place_library(p.pid(), library_, &how);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_EQ(*path, copy_dir_ + "/libfake-preload.so");
  EXPECT_NE(how.find("copied into the process's mount namespace"), std::string::npos) << how;
  std::string seen = fmt::format("/proc/{}/root{}", p.pid(), *path);
  EXPECT_EQ(*read_file(seen), *read_file(library_));
  struct stat st;
  ASSERT_EQ(::stat(seen.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  auto again = place_library(p.pid(), library_, &how);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_NE(how.find("placed earlier"), std::string::npos) << how;
}

TEST_F(InjectPlace, AnAbsoluteLinkPlantedAtTheDirectoryIsNotFollowedIntoLeakwatchsRoot) {
  // Through /proc/PID/root an absolute link resolves in leakwatch's root: followed, root
  // would write the library into any directory of the host.
  Namespaced p(dir_ + "/lib", fmt::format("ln -s {}/victim {}", dir_, copy_dir_), dir_ + "/ready");
  ASSERT_TRUE(p.ready());
  std::string how;
  auto path = place_library(p.pid(), library_, &how);
  ASSERT_FALSE(path) << how;
  EXPECT_NE(path.error().message.find("symbolic link"), std::string::npos)
      << path.error().message;
  EXPECT_TRUE(fs::is_empty(dir_ + "/victim"));
}

TEST_F(InjectPlace, ADirectoryOfAnotherUserIsNotTrusted) {
  // Its owner could swap the library after it was placed, into a process it may not control.
  Namespaced p(dir_ + "/lib", fmt::format("mkdir -m 0755 {0} && chown 65534 {0}", copy_dir_),
               dir_ + "/ready");
  ASSERT_TRUE(p.ready());
  std::string how;
  auto path = place_library(p.pid(), library_, &how);
  ASSERT_FALSE(path) << how;
  EXPECT_NE(path.error().message.find("owned by uid 65534"), std::string::npos)
      << path.error().message;
}

TEST_F(InjectPlace, AForeignFileAtTheLibrarysNameIsReplacedNotWrittenThrough) {
  // A link at the file's own name (placed by root in the namespace, or left over) is neither
  // trusted as the copy nor written through.
  Namespaced p(dir_ + "/lib",
               fmt::format("mkdir -m 0755 {0} && ln -s {1}/victim/x {0}/libfake-preload.so",
                           copy_dir_, dir_),
               dir_ + "/ready");
  ASSERT_TRUE(p.ready());
  std::string how;
  auto path = place_library(p.pid(), library_, &how);
  ASSERT_TRUE(path) << path.error().message;
  EXPECT_NE(how.find("copied into"), std::string::npos) << how;
  EXPECT_TRUE(fs::is_empty(dir_ + "/victim"));
  std::string seen = fmt::format("/proc/{}/root{}", p.pid(), *path);
  EXPECT_FALSE(fs::is_symlink(seen));
  EXPECT_EQ(*read_file(seen), *read_file(library_));
}

}  // namespace
}  // namespace leakwatch::inject
