#include "probe/tracefs.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "common/log.h"

namespace leakwatch::probe {
namespace {

constexpr const char* kRoots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};

bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string mounted_root() {
  for (const char* root : kRoots) {
    if (is_dir(std::string(root) + "/events")) return root;
  }
  return "";
}

}  // namespace

std::string ensure_tracefs() {
  static std::mutex mu;
  static bool mount_failed = false;  // tried once: say so once
  std::lock_guard lock(mu);
  if (auto root = mounted_root(); !root.empty()) return root;
  if (mount_failed) return "";
  if (::mount("tracefs", kRoots[0], "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    log::warn("tracefs is not mounted and mounting it at {} failed: {}", kRoots[0],
              std::strerror(errno));
    mount_failed = true;
    return "";
  }
  log::info("mounted tracefs at {} (tracepoints are attached through it)", kRoots[0]);
  return mounted_root();
}

bool tracepoint_exists(const std::string& category, const std::string& name) {
  std::string root = ensure_tracefs();
  return !root.empty() && is_dir(root + "/events/" + category + "/" + name);
}

}  // namespace leakwatch::probe
