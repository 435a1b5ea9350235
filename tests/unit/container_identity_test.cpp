// Container and Kubernetes identity from cgroup v2 paths as the runtimes and kubelet cgroup
// drivers write them (shapes taken from real nodes: containerd and CRI-O with the systemd
// driver, containerd and k3s with cgroupfs, kind, cri-dockerd, plain docker, podman).
#include <gtest/gtest.h>

#include "metrics/container_identity.h"

namespace leakwatch::metrics {
namespace {

constexpr const char* kId = "7c3f9a1d2e4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f";
constexpr const char* kUid = "2b4e6f80-1a3c-4d5e-8f70-9a1b2c3d4e5f";
constexpr const char* kUidUnderscored = "2b4e6f80_1a3c_4d5e_8f70_9a1b2c3d4e5f";

std::string s(const char* a) { return a; }

TEST(ContainerIdentity, ContainerdSystemdDriverBurstable) {
  auto id = parse_container_identity(
      s("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod") + kUidUnderscored +
      ".slice/cri-containerd-" + kId + ".scope");
  EXPECT_EQ(id.runtime, "containerd");
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.pod_uid, kUid);
  EXPECT_EQ(id.qos, "burstable");
}

TEST(ContainerIdentity, ContainerdSystemdDriverGuaranteedAndBestEffort) {
  auto g = parse_container_identity(s("/kubepods.slice/kubepods-pod") + kUidUnderscored +
                                    ".slice/cri-containerd-" + kId + ".scope");
  EXPECT_EQ(g.pod_uid, kUid);
  EXPECT_EQ(g.qos, "guaranteed");
  EXPECT_EQ(g.container_id, kId);
  auto b = parse_container_identity(
      s("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod") + kUidUnderscored +
      ".slice/cri-containerd-" + kId + ".scope");
  EXPECT_EQ(b.qos, "besteffort");
  EXPECT_EQ(b.pod_uid, kUid);
}

TEST(ContainerIdentity, CriOAndItsMonitor) {
  const std::string pod = s("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod") +
                          kUidUnderscored + ".slice/";
  auto c = parse_container_identity(pod + "crio-" + kId + ".scope");
  EXPECT_EQ(c.runtime, "cri-o");
  EXPECT_EQ(c.container_id, kId);
  EXPECT_EQ(c.pod_uid, kUid);
  // conmon belongs to the pod, not to a container.
  auto m = parse_container_identity(pod + "crio-conmon-" + kId + ".scope");
  EXPECT_EQ(m.runtime, "cri-o");
  EXPECT_EQ(m.container_id, "");
  EXPECT_EQ(m.pod_uid, kUid);
}

TEST(ContainerIdentity, CgroupfsDriver) {
  auto c = parse_container_identity(s("/kubepods/burstable/pod") + kUid + "/" + kId);
  EXPECT_EQ(c.pod_uid, kUid);
  EXPECT_EQ(c.qos, "burstable");
  EXPECT_EQ(c.container_id, kId);
  EXPECT_EQ(c.runtime, "");  // cgroupfs names do not say which runtime
  auto g = parse_container_identity(s("/kubepods/pod") + kUid + "/" + kId);
  EXPECT_EQ(g.qos, "guaranteed");
  EXPECT_EQ(g.container_id, kId);
  auto pause_level = parse_container_identity(s("/kubepods/besteffort/pod") + kUid);
  EXPECT_EQ(pause_level.pod_uid, kUid);
  EXPECT_EQ(pause_level.container_id, "");
}

TEST(ContainerIdentity, KindNestedUnderKubelet) {
  auto c = parse_container_identity(
      s("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
        "kubelet-kubepods-besteffort-pod") +
      kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope");
  EXPECT_EQ(c.container_id, kId);
  auto colon = parse_container_identity(
      s("/system.slice/containerd.service/kubepods-burstable-pod") + kUidUnderscored +
      ".slice:cri-containerd:" + kId);
  EXPECT_EQ(colon.pod_uid, kUid);
  EXPECT_EQ(colon.container_id, kId);
  EXPECT_EQ(colon.runtime, "containerd");
  EXPECT_EQ(colon.qos, "burstable");
}

TEST(ContainerIdentity, SubCgroupOfAContainerKeepsItsIdentity) {
  auto c = parse_container_identity(s("/kubepods.slice/kubepods-pod") + kUidUnderscored +
                                    ".slice/cri-containerd-" + kId + ".scope/init.scope");
  EXPECT_EQ(c.container_id, kId);
  EXPECT_EQ(c.pod_uid, kUid);
}

TEST(ContainerIdentity, DockerAndPodmanWithoutKubernetes) {
  auto d = parse_container_identity(s("/system.slice/docker-") + kId + ".scope");
  EXPECT_EQ(d.runtime, "docker");
  EXPECT_EQ(d.container_id, kId);
  EXPECT_FALSE(d.in_pod());
  auto fs = parse_container_identity(s("/docker/") + kId);
  EXPECT_EQ(fs.runtime, "docker");
  EXPECT_EQ(fs.container_id, kId);
  auto p = parse_container_identity(s("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-") +
                                    kId + ".scope");
  EXPECT_EQ(p.runtime, "podman");
  EXPECT_EQ(p.container_id, kId);
  auto conmon = parse_container_identity(s("/machine.slice/libpod-conmon-") + kId + ".scope");
  EXPECT_EQ(conmon.container_id, "");
}

TEST(ContainerIdentity, OrdinaryCgroupsHaveNone) {
  for (const char* path : {"/", "/system.slice/sshd.service", "/user.slice/user-0.slice/session-3.scope",
                           "/init.scope", "/kubepods.slice", "/kubepods/burstable",
                           "/system.slice/kubelet.service"}) {
    auto id = parse_container_identity(path);
    EXPECT_FALSE(id.in_pod()) << path;
    EXPECT_FALSE(id.in_container()) << path;
  }
  // A bare hex directory outside kubepods/docker is not taken for a container.
  EXPECT_FALSE(parse_container_identity(s("/mygroup/") + kId).in_container());
  // Malformed pod UIDs are not taken.
  EXPECT_FALSE(parse_container_identity("/kubepods/burstable/podnot-a-uid/abc").in_pod());
}

}  // namespace
}  // namespace leakwatch::metrics
