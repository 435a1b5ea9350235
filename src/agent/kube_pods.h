// Kubernetes names and labels of the pods on this node, from files the kubelet keeps:
//
//   LOG_DIR/pods/NAMESPACE_NAME_UID/                       every pod: namespace, name, UID
//   LOG_DIR/containers/POD_NAMESPACE_CONTAINER-ID.log      every container: its name and id
//   pod_manifests (file or directory)                      Pod / PodList JSON or YAML: labels
//                                                          (and container ids from status)
//
// Kubernetes names cannot contain '_', so the file names split without ambiguity.  A
// process's cgroup path gives its pod UID and container id (metrics/container_identity.h);
// identify() adds what these files know.  Without them a pod is known by its UID only.
//
// Thread-safety: not thread-safe (the agent's loop owns it).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "agent/workload.h"
#include "common/result.h"
#include "metrics/container_identity.h"

namespace leakwatch::agent {

struct PodInfo {
  std::string uid;
  std::string name;
  std::string k8s_namespace;
  bool labels_known = false;                           // from a manifest
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> container_names;  // container id -> name
};

class KubePods {
 public:
  KubePods(KubernetesConfig config, std::string node_name);

  // Re-reads the files when config.refresh_s has passed since the last read (or `force`).
  void refresh(double now_s, bool force = false);
  const PodInfo* find(const std::string& uid) const;
  WorkloadLabels identify(const metrics::ContainerIdentity& c) const;

  bool have_names() const { return have_names_; }
  bool have_labels() const { return have_labels_; }
  size_t pods() const { return pods_.size(); }
  // The last problem reading the files ("" when none).
  const std::string& problem() const { return problem_; }

 private:
  KubernetesConfig config_;
  std::string node_name_;
  double last_read_s_ = -1e300;
  std::map<std::string, PodInfo> pods_;  // by UID
  std::map<std::string, std::string> container_names_;  // id -> name (log dir)
  bool have_names_ = false, have_labels_ = false;
  std::string problem_;
};

// "NAMESPACE_NAME_UID" (a LOG_DIR/pods entry).
std::optional<PodInfo> parse_pod_dir_name(std::string_view name);

struct ContainerLogName {
  std::string pod, k8s_namespace, container, container_id;
};
// "POD_NAMESPACE_CONTAINER-ID.log" (a LOG_DIR/containers entry).
std::optional<ContainerLogName> parse_container_log_name(std::string_view name);

// Pods in one manifest text: a Pod, a PodList (kind: List too), or several YAML documents.
// Pods without a UID (static pod manifests) keep an empty uid.
[[nodiscard]] Result<std::vector<PodInfo>> parse_pod_manifests(std::string_view text);

}  // namespace leakwatch::agent
