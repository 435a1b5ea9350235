// Container and Kubernetes identity from a process's cgroup v2 path, as the container
// runtimes name their cgroups:
//
//   systemd driver   /kubepods.slice/kubepods-burstable.slice/
//                      kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope
//                    (crio-<id>.scope for CRI-O, docker-<id>.scope for dockershim/cri-dockerd;
//                     Guaranteed pods: kubepods-pod<uid>.slice directly under kubepods.slice)
//   cgroupfs driver  /kubepods/burstable/pod<uid>/<id>        (Guaranteed: /kubepods/pod<uid>/<id>)
//   kind / nested    .../kubelet.slice/.../kubepods-...-pod<uid>.slice:cri-containerd:<id>
//   no Kubernetes    /system.slice/docker-<id>.scope, /docker/<id>,
//                    /machine.slice/libpod-<id>.scope (podman)
//
// A process in a sub-cgroup of its container (systemd in a container, a cgroup namespace)
// keeps the container's identity.  The runtime's monitor processes (crio-conmon-<id>,
// libpod-conmon-<id>) belong to the pod but to no container.  Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace leakwatch::metrics {

struct ContainerIdentity {
  std::string runtime;       // "containerd", "cri-o", "docker", "podman", or "" (unknown)
  std::string container_id;  // as the runtime names it (64 hex digits), or ""
  std::string pod_uid;       // Kubernetes pod UID in its dashed form, or ""
  std::string qos;           // "guaranteed", "burstable", "besteffort", or ""

  bool in_container() const { return !container_id.empty(); }
  bool in_pod() const { return !pod_uid.empty(); }
  bool operator==(const ContainerIdentity&) const = default;
};

ContainerIdentity parse_container_identity(std::string_view cgroup_path);

}  // namespace leakwatch::metrics
