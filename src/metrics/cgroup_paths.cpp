#include "metrics/cgroup_paths.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "common/fd.h"
#include "metrics/process_collector.h"

namespace leakwatch::metrics {

std::optional<std::string> CgroupPaths::path(uint64_t id) {
  if (auto it = paths_.find(id); it != paths_.end()) return it->second;
  if (monotonic_seconds() - last_walk_s_ < min_rewalk_s_) return std::nullopt;
  if (!rewalk()) return std::nullopt;
  if (auto it = paths_.find(id); it != paths_.end()) return it->second;
  return std::nullopt;
}

Result<void> CgroupPaths::rewalk() {
  last_walk_s_ = monotonic_seconds();
  if (root_.empty()) return fail("no cgroup2 mount");
  std::unordered_map<uint64_t, std::string> found;
  struct stat st {};
  if (::stat(root_.c_str(), &st) != 0) return fail_errno("cannot stat " + root_);
  found.emplace(st.st_ino, std::string(1, '/'));
  // Depth-first, pending directories kept as paths (a wide level must not hold an fd per
  // child), each opened relative to the mount's fd.
  UniqueFd root_fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) return fail_errno("cannot open " + root_);
  std::vector<std::string> pending{""};
  while (!pending.empty()) {
    std::string rel = std::move(pending.back());
    pending.pop_back();
    int fd = rel.empty() ? ::dup(root_fd.get())
                         : ::openat(root_fd.get(), rel.c_str() + 1,
                                    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;  // removed meanwhile
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
      ::close(fd);
      continue;
    }
    while (dirent* e = ::readdir(dir)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      // (appended piecewise: g++ 12 warns falsely on rel + "/" + name)
      std::string child;
      child.reserve(rel.size() + 1 + std::char_traits<char>::length(e->d_name));
      child.append(rel).push_back('/');
      child.append(e->d_name);
      found[st.st_ino] = child;
      pending.push_back(std::move(child));
    }
    ::closedir(dir);
  }
  paths_ = std::move(found);
  return {};
}

}  // namespace leakwatch::metrics
