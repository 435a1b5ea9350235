// Stored investigation reports under reports_dir:
//
//   reports_dir/
//     index.json                      [ entry, ... ] newest last (what /api/reports serves)
//     20250101T120000Z-myservice-1234/
//       report.json                   report/json_writer.h
//       report.txt                    BCC memleak text (report/text_writer.h)
//       profile.pb.gz                 pprof (report/pprof_writer.h)
//       investigation.json            the request, overhead figures and how it ended
//
// Every file, the index included, is written to a temporary name and renamed, and a
// report enters the index only after all its files are complete: a reader (or a crash)
// never sees half a report.  Pruning by count and age removes the oldest first.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/investigation.h"
#include "common/result.h"

namespace leakwatch::agent {

struct StoredReport {
  std::string id;                  // also the subdirectory name
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  std::string target;              // configured target label
  int pid = 0;
  std::string comm;
  std::string reason;
  std::string end;                 // to_string(InvestigationEnd)
  double duration_s = 0;
  uint64_t sample_rate = 0;
  double overhead_percent = 0;
  size_t stacks = 0;
  std::string top_function;        // innermost named frame of the largest stack
  double top_bytes = 0;            // its estimated outstanding bytes
  uint64_t lost = 0;               // sum of the report's loss counters
  std::vector<std::string> files;  // relative to the report's directory
};

// Thread-safe: investigations finish on their own threads and store concurrently with the
// HTTP server listing.
class ReportStore {
 public:
  // Creates the directory if needed and loads index.json (entries whose directory is gone
  // are dropped).
  [[nodiscard]] static Result<std::unique_ptr<ReportStore>> open(const std::string& dir,
                                                                 ReportsConfig retention);

  // Writes the report's files and adds it to the index, then prunes.
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
