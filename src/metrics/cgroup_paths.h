// cgroup v2 id -> path.  The task iterator reports each process's cgroup by id (the kernfs
// node id, which is the inode number of the cgroup's directory); the paths come from one
// walk of the cgroup2 mount, repeated when an id is not known (a new cgroup) at most once
// per `min_rewalk_s`.  /proc/PID/cgroup is never read per process.
//
// Thread-safety: not thread-safe (the agent's loop owns it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/result.h"

namespace leakwatch::metrics {

class CgroupPaths {
 public:
  explicit CgroupPaths(std::string cgroup_root, double min_rewalk_s = 1.0)
      : root_(std::move(cgroup_root)), min_rewalk_s_(min_rewalk_s) {}

  // The path of cgroup `id` relative to the mount ("/kubepods.slice/..."; "/" for the
  // root), or nullopt when no directory has that id (it is gone, or the walk failed).
  std::optional<std::string> path(uint64_t id);

  // Walks the mount now (tests, and after many misses).
  Result<void> rewalk();
  size_t size() const { return paths_.size(); }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
  double min_rewalk_s_;
  double last_walk_s_ = -1e300;
  std::unordered_map<uint64_t, std::string> paths_;
};

}  // namespace leakwatch::metrics
