// Kubernetes identity end to end: a real process is moved into cgroup v2 directories named
// as the kubelet and containerd name them (systemd driver: kubepods.slice/...-pod<uid>.slice/
// cri-containerd-<id>.scope; cgroupfs driver: kubepods/burstable/pod<uid>/<id>), a kubelet
// log directory names the first pod, and `leakwatch agent` (the binary) selects them by pod
// and namespace targets and labels their series on /metrics.  Both layer-1 sources: the BPF
// task iterator (cgroup ids resolved by walking the mount) and /proc.  The test cgroups are
// removed afterwards.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <httplib.h>

#include "metrics/proc_parse.h"
#include "common/atomic_file.h"
#include "../unit/agent_testing.h"
#include "support/process.h"

namespace leakwatch::testing {
namespace {
namespace fs = std::filesystem;

constexpr const char* kUid = "5d1c2b3a-4e5f-4a6b-9c7d-8e9f0a1b2c3d";
constexpr const char* kUidUnderscored = "5d1c2b3a_4e5f_4a6b_9c7d_8e9f0a1b2c3d";
constexpr const char* kId = "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc";
constexpr const char* kUid2 = "0a0b0c0d-1111-4222-8333-444455556666";
constexpr const char* kId2 = "feedface00112233445566778899aabbccddeeff00112233445566778899aabb";

// Test cgroups under the cgroup2 mount, removed (deepest first) when the test ends; the
// processes put in them are killed first (a cgroup with members cannot be removed).
class TestCgroups {
 public:
  explicit TestCgroups(std::string root) : root_(std::move(root)) {}
  ~TestCgroups() {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) ::rmdir(it->c_str());
  }
  // Creates root/rel (and its parents); "" on failure.
  std::string make(const std::string& rel) {
    std::string path = root_;
    for (const auto& part : fs::path(rel)) {
      if (part == "/") continue;
      path += "/" + part.string();
      if (::mkdir(path.c_str(), 0755) == 0) made_.push_back(path);
      else if (errno != EEXIST) return "";
    }
    return path;
  }
  static bool join(const std::string& dir, pid_t pid) {
    std::ofstream f(dir + "/cgroup.procs");
    f << pid << "\n";
    f.flush();
    return static_cast<bool>(f);
  }

 private:
  std::string root_;
  std::vector<std::string> made_;
};

std::string cgroup2_root() {
  auto text = read_file("/proc/self/mountinfo");
  if (!text) return "";
  auto m = metrics::find_cgroup2_mount(*text);
  return m ? *m : "";
}

std::string scrape(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(std::chrono::seconds(5));
  auto r = c.Get("/metrics");
  return r && r->status == 200 ? r->body : "";
}

// The label set of the first sample of `family` whose labels contain every `needle`.
std::string series(const std::string& text, const std::string& family,
                   const std::vector<std::string>& needles) {
  std::regex re("^" + family + "\\{([^}]*)\\} \\S+$", std::regex::multiline);
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    std::string labels = (*it)[1].str();
    bool all = true;
    for (const auto& n : needles) all = all && labels.find(n) != std::string::npos;
    if (all) return labels;
  }
  return "";
}

// The source layer 1 reported in leakwatch_agent_layer1_info.
std::string metrics_source(const std::string& text) {
  std::smatch m;
  static const std::regex re("leakwatch_agent_layer1_info\\{[^}]*source=\"([a-z]+)\"");
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

class AgentKubernetes : public ::testing::TestWithParam<const char*> {};

TEST_P(AgentKubernetes, PodTargetsAndLabelsFromCgroupPaths) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  const std::string root = cgroup2_root();
  if (root.empty()) GTEST_SKIP() << "no cgroup2 mount";
  const std::string source = GetParam();
  if (source == "bpf" && !have_bpf()) GTEST_SKIP() << "needs BTF";

  TestCgroups cg(root);
  const std::string systemd_pod = std::string("kubepods.slice/kubepods-burstable.slice/") +
                                  "kubepods-burstable-pod" + kUidUnderscored + ".slice";
  const std::string a = cg.make(systemd_pod + "/cri-containerd-" + kId + ".scope");
  const std::string c = cg.make("kubepods/besteffort/pod" + std::string(kUid2) + "/" + kId2);
  ASSERT_FALSE(a.empty()) << "cannot create test cgroups under " << root;
  ASSERT_FALSE(c.empty());

  ChildProcess cart({fixture("agent_grower"), "step"});
  ASSERT_EQ(cart.read_line(), "ready");
  ChildProcess other({fixture("agent_grower"), "step"});
  ASSERT_EQ(other.read_line(), "ready");
  ASSERT_TRUE(TestCgroups::join(a, cart.pid()));
  ASSERT_TRUE(TestCgroups::join(c, other.pid()));

  // The kubelet's log directory names the first pod and its container.
  std::string tmpl = (fs::temp_directory_path() / "lw-k8s-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  fs::create_directories(dir + "/log/pods/shop_cart-7d9f8b6c5-x2k4q_" + kUid + "/cart-server");
  fs::create_directories(dir + "/log/containers");
  std::ofstream(dir + "/log/containers/cart-7d9f8b6c5-x2k4q_shop_cart-server-" + kId + ".log");

  const int port = free_port();
  const std::string config = dir + "/leakwatch.yaml";
  ASSERT_TRUE(write_file_atomic(
      config, "listen: 127.0.0.1:" + std::to_string(port) + "\nreports_dir: " + dir +
                  "/reports\nenvironment: ci\n"
                  "targets:\n  - pod: shop/cart-7d9f8b6c5-x2k4q\n  - namespace: shop\n"
                  "  - pod: " + kUid2 + "\n"
                  "kubernetes:\n  log_dir: " + dir + "/log\n"
                  "detection:\n  interval: 200ms\n  rate_window: 1s\n  source: " + source + "\n"));
  Proc agent({leakwatch(), "agent", "--config", config});

  std::string text;
  const std::string cart_pid = "pid=\"" + std::to_string(cart.pid()) + "\"";
  const std::string other_pid = "pid=\"" + std::to_string(other.pid()) + "\"";
  for (int i = 0; i < 100; ++i) {
    text = scrape(port);
    if (!series(text, "leakwatch_process_rss_bytes", {cart_pid, "target=\"namespace:shop\""}).empty() &&
        !series(text, "leakwatch_process_rss_bytes", {other_pid}).empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  agent.signal(SIGTERM);
  EXPECT_EQ(agent.wait(), 0) << agent.err();

  // The named pod: namespace and names from the log directory, the container id from the
  // cgroup path.
  const std::string by_pod = series(text, "leakwatch_process_rss_bytes",
                                     {cart_pid, "target=\"pod:shop/cart-7d9f8b6c5-x2k4q\""});
  ASSERT_FALSE(by_pod.empty()) << text << agent.err();
  EXPECT_NE(by_pod.find("namespace=\"shop\""), std::string::npos) << by_pod;
  EXPECT_NE(by_pod.find("pod=\"cart-7d9f8b6c5-x2k4q\""), std::string::npos) << by_pod;
  EXPECT_NE(by_pod.find(std::string("container=\"") + kId + "\""), std::string::npos) << by_pod;
  EXPECT_NE(by_pod.find("container_name=\"cart-server\""), std::string::npos) << by_pod;
  EXPECT_FALSE(series(text, "leakwatch_process_anon_bytes",
                      {cart_pid, "target=\"namespace:shop\"", "pod=\"cart-7d9f8b6c5-x2k4q\""})
                   .empty());
  // The namespace target does not take the other pod (no namespace known for it).
  EXPECT_TRUE(series(text, "leakwatch_process_rss_bytes", {other_pid, "target=\"namespace:shop\""})
                  .empty());
  // The pod the log directory does not know: its UID stands for its name.
  const std::string by_uid = series(text, "leakwatch_process_rss_bytes", {other_pid});
  ASSERT_FALSE(by_uid.empty()) << text;
  EXPECT_NE(by_uid.find(std::string("target=\"pod:") + kUid2 + "\""), std::string::npos) << by_uid;
  EXPECT_NE(by_uid.find(std::string("pod=\"") + kUid2 + "\""), std::string::npos) << by_uid;
  EXPECT_NE(by_uid.find(std::string("container=\"") + kId2 + "\""), std::string::npos) << by_uid;
  EXPECT_EQ(by_uid.find("namespace="), std::string::npos) << by_uid;
  EXPECT_EQ(metrics_source(text), source) << text;

  cart.kill();
  other.kill();
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Layer1, AgentKubernetes, ::testing::Values("bpf", "proc"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace leakwatch::testing
