#include "agent/investigation.h"

#include <algorithm>

#include "agent/units.h"
#include "common/clock.h"
#include "common/log.h"
#include "report/finding.h"

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

InvestigationRecord run_investigation(const InvestigationRequest& req, double growth_s,
                                      const GrowthLocatorFactory& growth_factory,
                                      const InvestigatorFactory& factory,
                                      const std::atomic<bool>& stop) {
  InvestigationRecord rec;
  rec.request = req;
  rec.started_unix_ms = unix_ms_now();
  const uint64_t t0 = monotonic_ns();
  if (growth_s > 0) {
    GrowthStep& g = rec.growth.emplace();
    g.requested_s = growth_s;
    InvestigationRequest greq = req;
    greq.duration_s = growth_s;
    std::unique_ptr<GrowthLocator> locator = growth_factory ? growth_factory() : nullptr;
    if (!locator) {
      g.outcome = "unavailable";
      g.error = "no growth locator available";
      log::warn("agent: growth step of pid {} unavailable; tracing allocations only", req.pid);
    } else if (auto res = locator->run(greq, stop); !res) {
      g.outcome = "failed";
      g.error = res.error().message;
      log::warn("agent: growth step of pid {} failed; tracing allocations without it: {}",
                req.pid, g.error);
    } else {
      g.outcome = to_string(res->end);
      g.result = std::move(*res);
      log::info("agent: growth step of pid {} ended ({}): {} stacks, {} faulted, {} mapped",
                req.pid, g.outcome, g.result->report.stacks.size(),
                format_bytes(g.result->report.totals.faulted_bytes),
                format_bytes(g.result->report.totals.mapped_bytes));
    }
  }
  if (rec.growth && rec.growth->result &&
      rec.growth->result->end != InvestigationEnd::kDuration) {
    rec.end = rec.growth->outcome;
    rec.memleak_error = "not run: the growth step ended with " + rec.growth->outcome;
  } else {
    if (rec.growth)  // the growth step used the start of the time box
      rec.request.duration_s =
          std::max(0.0, req.duration_s - static_cast<double>(monotonic_ns() - t0) / 1e9);
    std::unique_ptr<Investigator> inv = factory ? factory() : nullptr;
    if (!inv) {
      rec.end = "unavailable";
      rec.memleak_error = "no investigator available";
      log::warn("agent: no investigator available: pid {} not traced", req.pid);
    } else if (auto res = inv->run(rec.request, stop); !res) {
      rec.end = "failed";
      rec.memleak_error = res.error().message;
      log::error("agent: investigation of pid {} failed: {}", req.pid, res.error().message);
    } else {
      rec.end = to_string(res->end);
      rec.memleak = std::move(*res);
    }
  }
  rec.finished_unix_ms = unix_ms_now();
  rec.finding = finding_of(rec);
  return rec;
}

std::optional<report::Finding> finding_of(const InvestigationRecord& rec) {
  report::FindingInputs in;
  if (rec.memleak) {
    in.allocations = &rec.memleak->report;
    in.allocations_stopped = rec.memleak->stop_reason;
  } else {
    in.allocations_missing = rec.memleak_error;
  }
  if (rec.growth && rec.growth->result) in.growth = &rec.growth->result->report;
  else if (rec.growth) in.growth_missing = rec.growth->outcome + ": " + rec.growth->error;
  return report::make_finding(in);
}

}  // namespace leakwatch::agent
