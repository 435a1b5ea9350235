#include "metrics/container_identity.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace leakwatch::metrics {
namespace {

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c));
  });
}

// A container id: 64 lowercase hex digits (containerd, CRI-O, docker and podman all use
// them); shorter all-hex names are accepted from 32 digits on.
bool is_container_id(std::string_view s) { return s.size() >= 32 && s.size() <= 64 && is_hex(s); }

// "8f1a2b3c_4d5e_..." (systemd slices cannot hold '-') or the dashed form -> dashed.
std::string pod_uid(std::string_view s) {
  std::string uid(s);
  std::replace(uid.begin(), uid.end(), '_', '-');
  // 8-4-4-4-12 hex digits, or 32 digits without dashes (static pods' config hash).
  const bool dashed = uid.size() == 36 && uid[8] == '-' && uid[13] == '-' && uid[18] == '-' &&
                      uid[23] == '-';
  std::string digits = uid;
  std::erase(digits, '-');
  if ((dashed || uid.size() == 32) && is_hex(digits)) return uid;
  return "";
}

std::string_view strip_suffix(std::string_view s, std::string_view suffix) {
  return s.ends_with(suffix) ? s.substr(0, s.size() - suffix.size()) : s;
}

const char* qos_of(std::string_view s) {
  if (s == "burstable") return "burstable";
  if (s == "besteffort") return "besteffort";
  return nullptr;
}

// One segment naming a container ("cri-containerd-<id>.scope", ...): fills runtime and id.
bool container_segment(std::string_view seg, ContainerIdentity& id) {
  struct Prefix {
    std::string_view prefix;
    const char* runtime;
  };
  static constexpr Prefix kScopes[] = {
      {"cri-containerd-", "containerd"}, {"crio-", "cri-o"},     {"docker-", "docker"},
      {"libpod-", "podman"},             {"containerd-", "containerd"},
  };
  std::string_view name = strip_suffix(seg, ".scope");
  // kind and other nested setups: "<pod slice>:cri-containerd:<id>".
  if (size_t colon = seg.rfind(':'); colon != std::string_view::npos) {
    std::string_view rest = seg.substr(0, colon);
    size_t colon2 = rest.rfind(':');
    std::string_view runtime = colon2 == std::string_view::npos ? "" : rest.substr(colon2 + 1);
    std::string_view cid = seg.substr(colon + 1);
    if (is_container_id(cid)) {
      id.container_id = std::string(cid);
      id.runtime = runtime == "cri-containerd" ? "containerd"
                   : runtime == "crio"         ? "cri-o"
                   : runtime == "docker"       ? "docker"
                                               : std::string(runtime);
      return true;
    }
  }
  for (const Prefix& p : kScopes) {
    if (!name.starts_with(p.prefix)) continue;
    std::string_view cid = name.substr(p.prefix.size());
    if (cid.starts_with("conmon-")) {  // the runtime's monitor, not the container
      id.runtime = p.runtime;
      return false;
    }
    if (is_container_id(cid)) {
      id.container_id = std::string(cid);
      id.runtime = p.runtime;
      return true;
    }
  }
  return false;
}

}  // namespace

ContainerIdentity parse_container_identity(std::string_view path) {
  ContainerIdentity id;
  std::vector<std::string_view> segs;
  for (size_t start = 0; start <= path.size();) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) segs.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  bool under_kubepods = false, under_docker = false;
  for (size_t i = 0; i < segs.size(); ++i) {
    std::string_view seg = segs[i];
    std::string_view slice = strip_suffix(seg, ".slice");
    // The pod: "kubepods[-qos]-pod<uid>.slice" or "pod<uid>" below kubepods.
    if (size_t at = slice.find("-pod"); slice.starts_with("kubepods") && at != std::string_view::npos) {
      std::string_view head = slice.substr(0, at);  // kubepods or kubepods-<qos>
      std::string_view uid = slice.substr(at + 4);
      if (size_t colon = uid.find(':'); colon != std::string_view::npos)
        uid = strip_suffix(uid.substr(0, colon), ".slice");
      if (std::string u = pod_uid(uid); !u.empty()) {
        id.pod_uid = u;
        const char* q = head.starts_with("kubepods-") ? qos_of(head.substr(9)) : nullptr;
        id.qos = q ? q : "guaranteed";
      }
    } else if (under_kubepods && seg.starts_with("pod") && id.pod_uid.empty()) {
      if (std::string u = pod_uid(seg.substr(3)); !u.empty()) {
        id.pod_uid = u;
        const char* q = i > 0 ? qos_of(segs[i - 1]) : nullptr;
        id.qos = q ? q : "guaranteed";
      }
    } else if (slice == "kubepods" || slice.starts_with("kubepods-")) {
      under_kubepods = true;
      if (const char* q = slice.starts_with("kubepods-") ? qos_of(slice.substr(9)) : nullptr)
        id.qos = q;
    } else if (seg == "docker") {
      under_docker = true;
    }
    if (id.container_id.empty() && container_segment(seg, id)) break;
    // cgroupfs driver: the container's directory is its bare id, below the pod's (or
    // below /docker for plain docker).
    if (id.container_id.empty() && is_container_id(seg) &&
        (!id.pod_uid.empty() || under_docker)) {
      id.container_id = std::string(seg);
      if (under_docker && id.pod_uid.empty()) id.runtime = "docker";
      break;
    }
  }
  return id;
}

}  // namespace leakwatch::metrics
