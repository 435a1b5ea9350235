#include "agent/kube_pods.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "common/atomic_file.h"

namespace leakwatch::agent {
namespace fs = std::filesystem;

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

// "containerd://<id>", "cri-o://<id>", "docker://<id>" -> "<id>".
std::string strip_runtime(std::string_view id) {
  if (size_t at = id.find("://"); at != std::string_view::npos) id = id.substr(at + 3);
  return std::string(id);
}

void pods_from_node(const YAML::Node& n, std::vector<PodInfo>& out) {
  if (!n.IsMap()) return;
  const std::string kind = n["kind"] ? n["kind"].as<std::string>("") : "";
  if (kind == "PodList" || kind == "List" || (n["items"] && n["items"].IsSequence())) {
    for (const YAML::Node& item : n["items"]) pods_from_node(item, out);
    return;
  }
  if (!kind.empty() && kind != "Pod") return;
  const YAML::Node meta = n["metadata"];
  if (!meta || !meta.IsMap() || !meta["name"]) return;
  PodInfo p;
  p.name = meta["name"].as<std::string>("");
  p.k8s_namespace = meta["namespace"] ? meta["namespace"].as<std::string>("default") : "default";
  p.uid = meta["uid"] ? meta["uid"].as<std::string>("") : "";
  p.labels_known = true;
  if (const YAML::Node labels = meta["labels"]; labels && labels.IsMap())
    for (auto it = labels.begin(); it != labels.end(); ++it)
      p.labels[it->first.as<std::string>("")] = it->second.as<std::string>("");
  if (const YAML::Node status = n["status"]; status && status.IsMap())
    for (const char* key : {"containerStatuses", "initContainerStatuses"})
      if (const YAML::Node cs = status[key]; cs && cs.IsSequence())
        for (const YAML::Node& c : cs)
          if (c.IsMap() && c["containerID"] && c["name"])
            p.container_names[strip_runtime(c["containerID"].as<std::string>(""))] =
                c["name"].as<std::string>("");
  out.push_back(std::move(p));
}

}  // namespace

std::optional<PodInfo> parse_pod_dir_name(std::string_view name) {
  auto parts = split(name, '_');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty())
    return std::nullopt;
  PodInfo p;
  p.k8s_namespace = std::string(parts[0]);
  p.name = std::string(parts[1]);
  p.uid = std::string(parts[2]);
  return p;
}

std::optional<ContainerLogName> parse_container_log_name(std::string_view name) {
  if (!name.ends_with(".log")) return std::nullopt;
  name.remove_suffix(4);
  auto parts = split(name, '_');
  if (parts.size() != 3) return std::nullopt;
  std::string_view last = parts[2];
  size_t dash = last.rfind('-');
  if (dash == std::string_view::npos || dash == 0) return std::nullopt;
  std::string_view id = last.substr(dash + 1);
  if (id.size() < 32 || !std::all_of(id.begin(), id.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      }))
    return std::nullopt;
  return ContainerLogName{std::string(parts[0]), std::string(parts[1]),
                          std::string(last.substr(0, dash)), std::string(id)};
}

Result<std::vector<PodInfo>> parse_pod_manifests(std::string_view text) {
  std::vector<PodInfo> out;
  try {
    for (const YAML::Node& doc : YAML::LoadAll(std::string(text))) pods_from_node(doc, out);
  } catch (const YAML::Exception& e) {
    return fail("not a pod manifest: {}", e.msg);
  }
  return out;
}

KubePods::KubePods(KubernetesConfig config, std::string node_name)
    : config_(std::move(config)), node_name_(std::move(node_name)) {}

void KubePods::refresh(double now_s, bool force) {
  if (!force && now_s - last_read_s_ < config_.refresh_s) return;
  last_read_s_ = now_s;
  problem_.clear();
  std::map<std::string, PodInfo> pods;
  std::map<std::string, std::string> names;
  std::error_code ec;
  have_names_ = false;
  if (!config_.log_dir.empty() && fs::is_directory(config_.log_dir + "/pods", ec)) {
    have_names_ = true;
    for (const auto& e : fs::directory_iterator(config_.log_dir + "/pods", ec))
      if (auto p = parse_pod_dir_name(e.path().filename().string())) pods[p->uid] = *p;
    for (const auto& e : fs::directory_iterator(config_.log_dir + "/containers", ec))
      if (auto c = parse_container_log_name(e.path().filename().string()))
        names[c->container_id] = c->container;
  }
  have_labels_ = false;
  if (!config_.pod_manifests.empty()) {
    std::vector<std::string> files;
    if (fs::is_directory(config_.pod_manifests, ec)) {
      for (const auto& e : fs::directory_iterator(config_.pod_manifests, ec))
        if (e.is_regular_file(ec)) files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(config_.pod_manifests);
    }
    for (const std::string& f : files) {
      auto text = read_file(f);
      if (!text) {
        problem_ = fmt::format("{}: {}", f, text.error().message);
        continue;
      }
      auto parsed = parse_pod_manifests(*text);
      if (!parsed) {
        problem_ = fmt::format("{}: {}", f, parsed.error().message);
        continue;
      }
      have_labels_ = true;
      for (PodInfo& m : *parsed) {
        // A static pod's manifest has no UID; its mirror pod is NAME-NODE.
        PodInfo* into = nullptr;
        if (!m.uid.empty()) {
          into = &pods[m.uid];
        } else {
          for (auto& [uid, p] : pods)
            if (p.k8s_namespace == m.k8s_namespace &&
                (p.name == m.name || p.name == m.name + "-" + node_name_))
              into = &p;
          if (!into) continue;
        }
        if (into->uid.empty()) into->uid = m.uid;
        if (into->name.empty()) into->name = m.name;
        if (into->k8s_namespace.empty()) into->k8s_namespace = m.k8s_namespace;
        into->labels = std::move(m.labels);
        into->labels_known = true;
        for (auto& [id, name] : m.container_names) names[id] = name;
      }
    }
  }
  pods_ = std::move(pods);
  container_names_ = std::move(names);
}

const PodInfo* KubePods::find(const std::string& uid) const {
  auto it = pods_.find(uid);
  return it == pods_.end() ? nullptr : &it->second;
}

WorkloadLabels KubePods::identify(const metrics::ContainerIdentity& c) const {
  WorkloadLabels id;
  id.container = c.container_id;
  id.runtime = c.runtime;
  if (auto it = container_names_.find(c.container_id); it != container_names_.end())
    id.container_name = it->second;
  if (!c.in_pod()) return id;
  id.pod_uid = c.pod_uid;
  id.pod = c.pod_uid;
  if (const PodInfo* p = find(c.pod_uid)) {
    if (!p->name.empty()) id.pod = p->name;
    id.k8s_namespace = p->k8s_namespace;
  }
  return id;
}

}  // namespace leakwatch::agent
