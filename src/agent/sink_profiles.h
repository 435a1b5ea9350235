// What a stored investigation gives the profile sinks: its pprof files (the allocation
// trace's profile.pb.gz, the growth step's growth.pb.gz), as stored, each with the labels
// profile stores select on:
//
//   __name__        leakwatch_allocations | leakwatch_growth   (the profile type family)
//   service_name    from the target: the comm of a comm target, a cgroup's last directory,
//                   NAMESPACE/CONTAINER (or POD) for a process in a Kubernetes pod, else
//                   the process's comm
//   node, pid, comm, target, namespace, pod, pod_uid, container, container_name
//   verdict         the finding's (leak, cache, transient, unknown)
//
// Pure apart from reading the two files; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "agent/investigation.h"
#include "agent/report_store.h"
#include "sink/profile.h"

namespace leakwatch::agent {

std::string service_name(const InvestigationRequest& request);
// The finding's verdict ("unknown" when there is none).
std::string investigation_verdict(const InvestigationRecord& record);

std::vector<sink::Profile> investigation_profiles(const StoredReport& stored,
                                                  const std::string& report_dir,
                                                  const InvestigationRecord& record,
                                                  const std::string& node);

}  // namespace leakwatch::agent
