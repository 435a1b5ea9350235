// The container and Kubernetes identity of a watched process, as metrics labels, reports
// and sinks show it (agent/kube_pods.h derives it).  Plain data.
#pragma once

#include <string>

namespace leakwatch::agent {

// All "" for a process outside any container.
struct WorkloadLabels {
  std::string k8s_namespace;   // "" when unknown (no pod files) or not in a pod
  std::string pod;             // pod name, or its UID when the name is unknown
  std::string pod_uid;
  std::string container;       // container id
  std::string container_name;  // "" when unknown
  std::string runtime;         // containerd, cri-o, docker, podman

  bool empty() const { return pod_uid.empty() && container.empty(); }
  bool operator==(const WorkloadLabels&) const = default;
};

}  // namespace leakwatch::agent
