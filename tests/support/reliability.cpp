#include "support/reliability.h"

#include <dirent.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace leakwatch::testing {
namespace {

size_t count_entries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  size_t n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') n++;
  ::closedir(d);
  return n;
}

bool exists_by_id(int cmd, uint32_t id) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  if (cmd == BPF_PROG_GET_FD_BY_ID) attr.prog_id = id;
  else attr.link_id = id;
  long fd = ::syscall(__NR_bpf, cmd, &attr, sizeof attr);
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
    return true;
  }
  return errno != ENOENT;  // EPERM and the like: cannot tell, assume it exists
}

}  // namespace

ProcResources resources_of(pid_t pid) {
  ProcResources r;
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(status, line)) {
    r.alive = true;
    if (line.rfind("VmRSS:", 0) == 0) r.rss_bytes = std::stoull(line.substr(6)) * 1024;
    if (line.rfind("State:", 0) == 0 && line.find("zombie") != std::string::npos) r.alive = false;
  }
  r.fds = count_entries(fmt::format("/proc/{}/fd", pid));
  std::ifstream maps(fmt::format("/proc/{}/maps", pid));
  while (std::getline(maps, line)) r.mappings++;
  return r;
}

BpfHeld bpf_held_by(pid_t pid) {
  BpfHeld held;
  const std::string dir = fmt::format("/proc/{}/fdinfo", pid);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return held;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(dir + "/" + e->d_name);
    std::string line;
    bool link = false;
    uint32_t prog = 0;
    while (std::getline(in, line)) {
      auto value = [&](const char* key) -> uint32_t {
        return static_cast<uint32_t>(std::strtoul(line.c_str() + std::strlen(key), nullptr, 10));
      };
      if (line.rfind("link_id:", 0) == 0) {
        held.links.insert(value("link_id:"));
        link = true;
      } else if (line.rfind("prog_id:", 0) == 0) {
        prog = value("prog_id:");
      } else if (line.rfind("map_id:", 0) == 0) {
        held.maps.insert(value("map_id:"));
      }
    }
    // A link's fdinfo names its program too; count the program either way.
    if (prog != 0) held.progs.insert(prog);
    (void)link;
  }
  ::closedir(d);
  return held;
}

bool bpf_prog_exists(uint32_t id) { return exists_by_id(BPF_PROG_GET_FD_BY_ID, id); }
bool bpf_link_exists(uint32_t id) { return exists_by_id(BPF_LINK_GET_FD_BY_ID, id); }

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void record_figure(const std::string& key, double value) {
  ::testing::Test::RecordProperty(key, fmt::format("{}", value));
  std::printf("[figure] %s = %s\n", key.c_str(), fmt::format("{}", value).c_str());
}

void record_figure(const std::string& key, const std::string& value) {
  ::testing::Test::RecordProperty(key, value);
  std::printf("[figure] %s = %s\n", key.c_str(), value.c_str());
}

double stress_scale() {
  const char* s = std::getenv("LEAKWATCH_STRESS_SCALE");
  double v = s ? std::atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

}  // namespace leakwatch::testing
