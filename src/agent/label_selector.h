// Kubernetes label selectors (the syntax of `kubectl get -l`): requirements joined by
// commas, all of which must hold.
//
//   app=web   app==web   tier!=cache   env in (prod,staging)   env notin (dev)   canary   !canary
//
// Pure and thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace leakwatch::agent {

struct LabelSelector {
  struct Requirement {
    enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
    std::string key;
    Op op = Op::kEquals;
    std::vector<std::string> values;  // one for kEquals/kNotEquals

    bool operator==(const Requirement&) const = default;
  };
  std::vector<Requirement> requirements;
  std::string text;  // as written, trimmed

  bool empty() const { return requirements.empty(); }
  bool matches(const std::map<std::string, std::string>& labels) const;
  bool operator==(const LabelSelector&) const = default;
};

// Errors name the offending part: "expected a label key at \"=web\"".
[[nodiscard]] Result<LabelSelector> parse_label_selector(std::string_view text);

}  // namespace leakwatch::agent
