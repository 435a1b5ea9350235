// Kubernetes names and labels from the kubelet's files (log directories and pod manifests),
// and label selectors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/kube_pods.h"
#include "agent/label_selector.h"
#include "agent_loop_testing.h"

namespace leakwatch::agent {
namespace {
namespace fs = std::filesystem;

constexpr const char* kId = "7c3f9a1d2e4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f";
constexpr const char* kUid = "2b4e6f80-1a3c-4d5e-8f70-9a1b2c3d4e5f";

TEST(LabelSelector, EqualityAndSetRequirements) {
  auto sel = parse_label_selector("app=web, tier!=cache,env in (prod, staging),canary,!debug");
  ASSERT_TRUE(sel) << sel.error().message;
  EXPECT_EQ(sel->requirements.size(), 5u);
  std::map<std::string, std::string> labels{{"app", "web"}, {"env", "prod"}, {"canary", ""}};
  EXPECT_TRUE(sel->matches(labels));
  labels["tier"] = "cache";
  EXPECT_FALSE(sel->matches(labels));
  labels.erase("tier");
  labels["debug"] = "1";
  EXPECT_FALSE(sel->matches(labels));
  labels.erase("debug");
  labels["env"] = "dev";
  EXPECT_FALSE(sel->matches(labels));

  auto notin = parse_label_selector("app.kubernetes.io/name==api,env notin (dev)");
  ASSERT_TRUE(notin) << notin.error().message;
  EXPECT_TRUE(notin->matches({{"app.kubernetes.io/name", "api"}}));
  EXPECT_FALSE(notin->matches({{"app.kubernetes.io/name", "api"}, {"env", "dev"}}));
}

TEST(LabelSelector, RejectsMalformedSelectors) {
  for (const char* bad : {"", "=web", "app in prod", "app in ()", "app=we b", "app ~ web"}) {
    auto s = parse_label_selector(bad);
    EXPECT_FALSE(s) << bad;
  }
}

TEST(KubePods, LogDirectoryNames) {
  auto p = parse_pod_dir_name(std::string("shop_cart-7d9f8b6c5-x2k4q_") + kUid);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->k8s_namespace, "shop");
  EXPECT_EQ(p->name, "cart-7d9f8b6c5-x2k4q");
  EXPECT_EQ(p->uid, kUid);
  EXPECT_FALSE(parse_pod_dir_name("not-a-pod-dir"));

  auto c = parse_container_log_name(std::string("cart-7d9f8b6c5-x2k4q_shop_cart-server-") + kId +
                                    ".log");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pod, "cart-7d9f8b6c5-x2k4q");
  EXPECT_EQ(c->k8s_namespace, "shop");
  EXPECT_EQ(c->container, "cart-server");
  EXPECT_EQ(c->container_id, kId);
  EXPECT_FALSE(parse_container_log_name("cart_shop_server.log"));
}

TEST(KubePods, PodListAndStaticManifests) {
  const std::string podlist = std::string(R"({"kind":"PodList","apiVersion":"v1","items":[
    {"metadata":{"name":"cart-7d9f8b6c5-x2k4q","namespace":"shop","uid":")") + kUid +
                              R"(","labels":{"app":"cart","tier":"api"}},
     "status":{"containerStatuses":[{"name":"cart-server","containerID":"containerd://)" +
                              kId + R"("}]}}]})";
  auto pods = parse_pod_manifests(podlist);
  ASSERT_TRUE(pods) << pods.error().message;
  ASSERT_EQ(pods->size(), 1u);
  EXPECT_EQ((*pods)[0].uid, kUid);
  EXPECT_EQ((*pods)[0].labels.at("app"), "cart");
  EXPECT_EQ((*pods)[0].container_names.at(kId), "cart-server");

  auto yaml = parse_pod_manifests(
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\n"
      "  labels:\n    component: etcd\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n"
      "  name: x\n");
  ASSERT_TRUE(yaml) << yaml.error().message;
  ASSERT_EQ(yaml->size(), 1u);
  EXPECT_EQ((*yaml)[0].name, "etcd");
  EXPECT_EQ((*yaml)[0].uid, "");
  EXPECT_EQ((*yaml)[0].labels.at("component"), "etcd");
  EXPECT_FALSE(parse_pod_manifests("{ not yaml: ["));
}

TEST(KubePods, IdentifyFromFilesOnDisk) {
  TempDir tmp;
  const std::string log = tmp.path() + "/log";
  fs::create_directories(log + "/pods/shop_cart-7d9f8b6c5-x2k4q_" + kUid + "/cart-server");
  fs::create_directories(log + "/pods/kube-system_etcd-node1_0123456789abcdef0123456789abcdef/etcd");
  fs::create_directories(log + "/containers");
  std::ofstream(log + "/containers/cart-7d9f8b6c5-x2k4q_shop_cart-server-" + kId + ".log") << "";
  const std::string manifests = tmp.path() + "/manifests";
  fs::create_directories(manifests);
  std::ofstream(manifests + "/etcd.yaml")
      << "kind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\n  labels:\n"
         "    component: etcd\n";
  std::ofstream(manifests + "/pods.json")
      << R"({"kind":"PodList","items":[{"metadata":{"name":"cart-7d9f8b6c5-x2k4q",)"
      << R"("namespace":"shop","uid":")" << kUid << R"(","labels":{"app":"cart"}}}]})";

  KubernetesConfig kc;
  kc.log_dir = log;
  kc.pod_manifests = manifests;
  KubePods pods(kc, "node1");
  pods.refresh(0, true);
  EXPECT_TRUE(pods.have_names());
  EXPECT_TRUE(pods.have_labels());
  EXPECT_EQ(pods.problem(), "");

  metrics::ContainerIdentity c{"containerd", kId, kUid, "burstable"};
  WorkloadLabels w = pods.identify(c);
  EXPECT_EQ(w.k8s_namespace, "shop");
  EXPECT_EQ(w.pod, "cart-7d9f8b6c5-x2k4q");
  EXPECT_EQ(w.container, kId);
  EXPECT_EQ(w.container_name, "cart-server");
  ASSERT_NE(pods.find(kUid), nullptr);
  EXPECT_EQ(pods.find(kUid)->labels.at("app"), "cart");
  // The static pod's manifest (no UID) joined its mirror pod NAME-NODE.
  const PodInfo* etcd = pods.find("0123456789abcdef0123456789abcdef");
  ASSERT_NE(etcd, nullptr);
  EXPECT_EQ(etcd->labels.at("component"), "etcd");

  // Without the files a pod is known by its UID only.
  KubernetesConfig none;
  none.log_dir = tmp.path() + "/missing";
  KubePods bare(none, "node1");
  bare.refresh(0, true);
  EXPECT_FALSE(bare.have_names());
  WorkloadLabels u = bare.identify(c);
  EXPECT_EQ(u.pod, kUid);
  EXPECT_EQ(u.k8s_namespace, "");
  EXPECT_EQ(u.container, kId);
}

}  // namespace
}  // namespace leakwatch::agent
