// How an investigation step ended, from how its session's loop stopped.
#pragma once

#include "agent/investigation.h"
#include "session/driver.h"

namespace leakwatch::cli {

inline agent::InvestigationEnd investigation_end(session::StopCause cause) {
  switch (cause) {
    case session::StopCause::kTargetExited:
    case session::StopCause::kCommandExited:
    case session::StopCause::kCommandKilled: return agent::InvestigationEnd::kTargetExited;
    case session::StopCause::kGuard: return agent::InvestigationEnd::kOverheadBudget;
    case session::StopCause::kDuration:
    case session::StopCause::kCount: return agent::InvestigationEnd::kDuration;
    default: return agent::InvestigationEnd::kStopped;
  }
}

}  // namespace leakwatch::cli
