#include "agent/sink_profiles.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/atomic_file.h"
#include "common/log.h"

namespace leakwatch::agent {
namespace {

// A UUID-shaped id derived from the stored file's name (stores may insist on the UUID
// form; the same file always gets the same id).
std::string profile_uuid(const std::string& name) {
  uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
  for (unsigned char c : name) {
    h1 = (h1 ^ c) * 1099511628211ull;
    h2 = (h2 ^ c) * 0xff51afd7ed558ccdull + 0x2545f4914f6cdd1dull;
  }
  h1 = (h1 & ~0xf000ull) | 0x4000ull;                                // version 4
  h2 = (h2 & ~(3ull << 62)) | (2ull << 62);                          // RFC 4122 variant
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", h1 >> 32, (h1 >> 16) & 0xffff,
                     h1 & 0xffff, h2 >> 48, h2 & 0xffffffffffffull);
}

}  // namespace

std::string service_name(const InvestigationRequest& r) {
  const WorkloadLabels& w = r.workload;
  if (!w.pod_uid.empty()) {
    const std::string& who = !w.container_name.empty() ? w.container_name : w.pod;
    return w.k8s_namespace.empty() ? who : w.k8s_namespace + "/" + who;
  }
  if (r.target.starts_with("comm:")) return r.target.substr(5);
  if (r.target.starts_with("cgroup:")) {
    std::string dir = r.target.substr(7);
    while (dir.size() > 1 && dir.ends_with('/')) dir.pop_back();
    size_t slash = dir.rfind('/');
    std::string last = slash == std::string::npos ? dir : dir.substr(slash + 1);
    if (!last.empty()) return last;
  }
  return r.comm.empty() ? "unknown" : r.comm;
}

std::string investigation_verdict(const InvestigationRecord& record) {
  if (!record.memleak) return "unknown";
  const report::Report& rep = record.memleak->report;
  if (rep.finding) return report::to_string(rep.finding->verdict);
  // No finding named: the largest stack's verdict.
  if (!rep.stacks.empty()) return report::to_string(rep.stacks.front().verdict);
  return "unknown";
}

std::vector<sink::Profile> investigation_profiles(const StoredReport& stored,
                                                  const std::string& report_dir,
                                                  const InvestigationRecord& record,
                                                  const std::string& node) {
  const InvestigationRequest& r = record.request;
  std::vector<std::pair<std::string, std::string>> common{
      {"service_name", service_name(r)},
      {"node", node},
      {"pid", std::to_string(r.pid)},
      {"comm", r.comm},
      {"target", r.target},
      {"verdict", investigation_verdict(record)},
  };
  const WorkloadLabels& w = r.workload;
  for (auto [name, value] : {std::pair{"namespace", &w.k8s_namespace}, {"pod", &w.pod},
                             {"pod_uid", &w.pod_uid}, {"container", &w.container},
                             {"container_name", &w.container_name}})
    if (!value->empty()) common.emplace_back(name, *value);

  std::vector<sink::Profile> out;
  for (auto [file, family] : {std::pair{"profile.pb.gz", "leakwatch_allocations"},
                              {"growth.pb.gz", "leakwatch_growth"}}) {
    if (std::find(stored.files.begin(), stored.files.end(), file) == stored.files.end()) continue;
    auto data = read_file(report_dir + "/" + stored.id + "/" + file);
    if (!data) {
      log::warn("agent: {} of {} not pushed: {}", file, stored.id, data.error().message);
      continue;
    }
    sink::Profile p;
    p.labels.emplace_back("__name__", family);
    p.labels.insert(p.labels.end(), common.begin(), common.end());
    p.pprof_gz = std::move(*data);
    p.id = profile_uuid(stored.id + "/" + file);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace leakwatch::agent
