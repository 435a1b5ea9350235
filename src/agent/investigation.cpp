#include "agent/investigation.h"

namespace leakwatch::agent {

const char* to_string(InvestigationEnd end) {
  switch (end) {
    case InvestigationEnd::kDuration: return "duration";
    case InvestigationEnd::kOverheadBudget: return "overhead_budget";
    case InvestigationEnd::kStopped: return "stopped";
    case InvestigationEnd::kTargetExited: return "target_exited";
  }
  return "unknown";
}

}  // namespace leakwatch::agent
