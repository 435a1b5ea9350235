// Stored investigation reports under reports_dir:
//
//   reports_dir/
//     index.json                      [ entry, ... ] newest last (what /api/reports serves)
//     20250101T120000Z-myservice-1234/
//       report.json                   allocation report (report/json_writer.h)
//       report.txt                    BCC memleak text (report/text_writer.h)
//       profile.pb.gz                 pprof (report/pprof_writer.h)
//       growth.json                   growth step's report (report/growth_writer.h)
//       growth.txt                    its text
//       growth.pb.gz                  its pprof (faulted_bytes, mapped_bytes, faults)
//       investigation.json            the request, overhead figures, how each step ended,
//                                     the process's memory around the trigger ("memory":
//                                     {trigger_unix_ms, t_unix_ms, anon_bytes, rss_bytes})
//
// The report.* files exist when the allocation trace produced a report, the growth.* ones
// when the growth step did; an investigation is stored when at least one of them did.  An
// entry's "files" lists what its directory holds.
//
// Every file, the index included, is written to a temporary name and renamed, and a
// report enters the index only after all its files are complete: a reader (or a crash)
// never sees half a report.  Pruning by count and age removes the oldest first.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/investigation.h"
#include "agent/workload.h"
#include "common/result.h"

namespace leakwatch::agent {

// The growth step as an index entry summarises it.
struct StoredGrowth {
  std::string outcome;             // duration|stopped|target_exited|failed|unavailable
  std::string error;               // why there is no growth report (failed, unavailable)
  double duration_s = 0;           // traced for (0 without a report)
  size_t stacks = 0;
  std::string top_function;        // innermost named frame of the largest growth, past
                                   // the mmap/brk wrappers and the allocator
  double top_bytes = 0;            // its growth_bytes
  double faulted_bytes = 0;        // anonymous first touches, all stacks (estimated)
  double mapped_bytes = 0;         // anonymous bytes still mapped, all stacks (exact)
  uint64_t lost = 0;               // sum of the growth report's loss counters
};

struct StoredReport {
  std::string id;                  // also the subdirectory name
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  std::string target;              // configured target label
  int pid = 0;
  std::string comm;
  std::string reason;
  std::string end;                 // InvestigationRecord::end
  std::string memleak_error;       // why there is no allocation report, or ""
  // The allocation trace's figures (0 and "" without an allocation report):
  double duration_s = 0;
  report::Sampling sampling;       // the allocation trace's (the request's)
  double overhead_percent = 0;
  size_t stacks = 0;
  // The finding's function when there is a finding, else the innermost named frame of the
  // largest stack past the allocator.
  std::string top_function;
  double top_bytes = 0;            // the largest stack's estimated outstanding bytes
  uint64_t lost = 0;               // sum of the report's loss counters
  std::optional<StoredGrowth> growth;  // absent when no growth step was configured
  std::optional<report::Finding> finding;  // the investigation's conclusion
  WorkloadLabels workload;         // container / Kubernetes identity ("workload", or null)
  std::vector<std::string> files;  // relative to the report's directory
};

// The entries of index.json's text, oldest first; entries that are not objects, or whose
// fields do not have the documented types, are skipped.  Fails when the text is not a
// JSON array.  Pure function; thread-safe.
[[nodiscard]] Result<std::vector<StoredReport>> parse_index(std::string_view text);

// Thread-safe: investigations finish on their own threads and store concurrently with the
// HTTP server listing.
class ReportStore {
 public:
  // Creates the directory if needed and loads index.json (entries whose directory is gone
  // are dropped).
  [[nodiscard]] static Result<std::unique_ptr<ReportStore>> open(const std::string& dir,
                                                                 ReportsConfig retention);

  // Writes the investigation's files and adds it to the index, then prunes.  Fails
  // without writing anything when the record holds neither report.
  [[nodiscard]] Result<StoredReport> store(const InvestigationRecord& record);
  // An allocation trace alone (no growth step).
  [[nodiscard]] Result<StoredReport> store(const InvestigationRequest& request,
                                           const InvestigationResult& result,
                                           int64_t started_unix_ms, int64_t finished_unix_ms);

  // Removes entries beyond max_count or older than max_age; returns how many.
  size_t prune(int64_t now_unix_ms);

  std::vector<StoredReport> list() const;
  std::string index_json() const;  // the JSON array /api/reports returns
  const std::string& dir() const { return dir_; }
  uint64_t pruned_total() const;
  void set_retention(ReportsConfig retention);

 private:
  ReportStore(std::string dir, ReportsConfig retention);
  Result<void> write_index_locked();
  size_t prune_locked(int64_t now_unix_ms);

  const std::string dir_;
  mutable std::mutex mu_;
  ReportsConfig retention_;
  std::vector<StoredReport> entries_;  // oldest first
  uint64_t pruned_total_ = 0;
};


}  // namespace leakwatch::agent
