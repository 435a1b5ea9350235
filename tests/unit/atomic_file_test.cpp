// write_file_atomic as root in a directory someone else can write to: planted links are
// never written through, nodes that are not regular files are written in place, a writer
// killed mid-write leaves nothing that the next write does not clean up.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/atomic_file.h"

namespace leakwatch {
namespace {
namespace fs = std::filesystem;

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "lw-atomic-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  static std::string content(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Every entry of the directory but `keep`.
  std::vector<std::string> others(const std::vector<std::string>& keep) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string name = e.path().filename();
      if (std::find(keep.begin(), keep.end(), name) == keep.end()) out.push_back(name);
    }
    return out;
  }
  std::string dir_;
};

TEST_F(AtomicFile, WritesAndReplacesARegularFileKeepingItsMode) {
  const std::string p = path("report.json");
  ASSERT_TRUE(write_file_atomic(p, "one"));
  EXPECT_EQ(content(p), "one");
  ASSERT_EQ(::chmod(p.c_str(), 0600), 0);
  ASSERT_TRUE(write_file_atomic(p, "two"));
  EXPECT_EQ(content(p), "two");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(others({"report.json"}).empty());
}

// The temporary used to be "FILE.tmp.PID", opened with O_CREAT|O_TRUNC: a link planted at
// that name made leakwatch overwrite whatever it pointed to.
TEST_F(AtomicFile, PlantedLinkAtTheOldPredictableNameIsNotWrittenThrough) {
  const std::string victim = path("victim");
  { std::ofstream(victim) << "secret"; }
  ASSERT_EQ(::chmod(victim.c_str(), 0600), 0);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(victim.c_str(), 0, 0), 0);
  }
  const std::string out = path("report.json");
  for (const std::string& planted :
       {out + ".tmp." + std::to_string(::getpid()), out + ".tmp", path(".report.json.tmp")})
    ASSERT_EQ(::symlink(victim.c_str(), planted.c_str()), 0) << planted;

  ASSERT_TRUE(write_file_atomic(out, "report"));
  EXPECT_EQ(content(out), "report");
  EXPECT_EQ(content(victim), "secret");
  struct stat st;
  ASSERT_EQ(::stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 6);
}

TEST_F(AtomicFile, LinkOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a link owned by another user";
  const std::string victim = path("shadow");
  { std::ofstream(victim) << "root only"; }
  ASSERT_EQ(::chmod(victim.c_str(), 0600), 0);
  const std::string out = path("report.json");
  ASSERT_EQ(::symlink(victim.c_str(), out.c_str()), 0);
  ASSERT_EQ(::lchown(out.c_str(), 65534, 65534), 0);

  auto w = write_file_atomic(out, "report");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("symbolic link owned by uid 65534"), std::string::npos)
      << w.error().message;
  EXPECT_EQ(content(victim), "root only");
  EXPECT_TRUE(fs::is_symlink(out));
  EXPECT_FALSE(check_output_path(out));
}

TEST_F(AtomicFile, OwnLinkIsFollowedAndKept) {
  const std::string real = path("real.json");
  const std::string link = path("latest.json");
  ASSERT_EQ(::symlink("real.json", link.c_str()), 0);  // relative, dangling for now
  ASSERT_TRUE(write_file_atomic(link, "first"));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(content(real), "first");
  ASSERT_TRUE(write_file_atomic(link, "second"));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(content(real), "second");
}

TEST_F(AtomicFile, FifoIsWrittenInPlace) {
  const std::string fifo = path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // a reader, so the writer's open returns
  ASSERT_GE(rd, 0);
  std::thread writer([&] { EXPECT_TRUE(write_file_atomic(fifo, "through the pipe")); });
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < 16 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{rd, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[64];
      ssize_t n = ::read(rd, buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
  }
  writer.join();
  ::close(rd);
  EXPECT_EQ(got, "through the pipe");
  struct stat st;
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
  EXPECT_TRUE(others({"pipe"}).empty());
}

TEST_F(AtomicFile, CharacterDeviceIsWrittenInPlace) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  const std::string null = path("null");
  ASSERT_EQ(::mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_TRUE(write_file_atomic(null, "discarded"));
  struct stat st;
  ASSERT_EQ(::lstat(null.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "the device node was replaced";
  EXPECT_TRUE(others({"null"}).empty());
}

// /dev/stdout is a link to /proc/self/fd/1: the report goes to the descriptor, whatever it
// is, and the link is left alone.
TEST_F(AtomicFile, DevStdoutWritesToTheDescriptor) {
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::close(pipefd[0]);
    bool ok = write_file_atomic("/dev/stdout", "to stdout\n").has_value() &&
              write_file_atomic("/dev/fd/1", "and again\n").has_value();
    ::_exit(ok ? 0 : 1);
  }
  ::close(pipefd[1]);
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(got, "to stdout\nand again\n");
  EXPECT_TRUE(fs::is_symlink("/dev/stdout"));
}

TEST_F(AtomicFile, DirectoriesAndMissingDirectoriesAreErrors) {
  EXPECT_FALSE(write_file_atomic(dir_, "x"));
  auto missing = check_output_path(dir_ + "/no/such/dir/out.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no such directory " + dir_ + "/no/such/dir"),
            std::string::npos)
      << missing.error().message;
  const std::string file = path("plain");
  ASSERT_TRUE(write_file_atomic(file, "x"));
  auto under_file = check_output_path(file + "/out.json");
  ASSERT_FALSE(under_file);
  EXPECT_NE(under_file.error().message.find("is not a directory"), std::string::npos)
      << under_file.error().message;
  EXPECT_TRUE(check_output_path(path("new.json")));
  EXPECT_TRUE(check_output_path("/dev/stdout"));
  EXPECT_FALSE(fs::exists(path("new.json")));
  EXPECT_TRUE(others({"plain"}).empty()) << "the check left a file behind";
}

TEST(AtomicFileNames, TemporaryNamesAreRecognisedExactly) {
  EXPECT_TRUE(is_atomic_temp_name(".r.json.lwtmp.123.0123456789abcdef", "r.json"));
  EXPECT_FALSE(is_atomic_temp_name(".r.json.lwtmp.123.0123456789abcde", "r.json"));
  EXPECT_FALSE(is_atomic_temp_name(".r.json.lwtmp.12x.0123456789abcdef", "r.json"));
  EXPECT_FALSE(is_atomic_temp_name(".other.lwtmp.123.0123456789abcdef", "r.json"));
  EXPECT_FALSE(is_atomic_temp_name("r.json.tmp.123", "r.json"));
}

// A writer SIGKILLed in the middle of a large write: whatever it left, the next write of the
// same file leaves the directory with the file alone.
TEST_F(AtomicFile, KilledWriterLeavesNothingTheNextWriteDoesNotClean) {
  const std::string out = path("big.json");
  const std::string big(64u << 20, 'x');
  for (int attempt = 0; attempt < 3; ++attempt) {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(ready[0]);
      (void)!::write(ready[1], "g", 1);
      for (;;) (void)write_file_atomic(out, big);
    }
    ::close(ready[1]);
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + 40 * attempt));
    ::kill(pid, SIGKILL);
    ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  }
  // Leftovers of the same naming whose writer is gone, planted as they would be left on a
  // file system without O_TMPFILE; and look-alikes that must be kept.
  const std::string stale = path(".big.json.lwtmp.999999999.00000000deadbeef");
  { std::ofstream(stale) << "half a report"; }
  const std::string alive = path(".big.json.lwtmp.1.00000000cafef00d");  // pid 1 runs
  { std::ofstream(alive) << "someone's write in progress"; }
  const std::string link = path(".big.json.lwtmp.999999998.00000000feedface");
  ASSERT_EQ(::symlink("/etc/passwd", link.c_str()), 0);

  ASSERT_TRUE(write_file_atomic(out, "small"));
  EXPECT_EQ(content(out), "small");
  std::vector<std::string> left = others({"big.json"});
  std::sort(left.begin(), left.end());
  std::vector<std::string> want{".big.json.lwtmp.1.00000000cafef00d",
                                ".big.json.lwtmp.999999998.00000000feedface"};
  EXPECT_EQ(left, want);
}

}  // namespace
}  // namespace leakwatch
