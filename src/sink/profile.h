// One profile to push: a gzipped pprof and the labels it is stored under.  Plain data.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace leakwatch::sink {

struct Profile {
  // Labels in order; "__name__" names the profile type family in both stores
  // ("leakwatch_allocations", "leakwatch_growth") and "service_name" the service.
  std::vector<std::pair<std::string, std::string>> labels;
  std::string pprof_gz;  // perftools.profiles.Profile, gzip-compressed
  std::string id;        // unique per profile: retries of one push carry the same id
};

// The value of label `name`, or "" (tests, log lines).
inline std::string label_value(const Profile& p, const std::string& name) {
  for (auto& [k, v] : p.labels)
    if (k == name) return v;
  return "";
}

}  // namespace leakwatch::sink
