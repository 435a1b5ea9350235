// pprof output: a gzipped perftools.profiles.Profile (profile.proto in this folder) that
// `go tool pprof`, Pyroscope, Parca and other pprof stores open.
//
// Sample types, in this order:
//   alloc_objects/count, alloc_space/bytes  allocations made during the session (estimates;
//                                           the in-use figures when the producer left them 0)
//   inuse_objects/count, inuse_space/bytes  outstanding at the end (Estimate.estimate)
// default_sample_type is inuse_space; period_type space/bytes.  One Location per frame
// address (inlined frames at the same address become extra Lines of one Location), one
// Mapping per module with its path and build id, Functions with name and source file.
// The sampling mode and loss counters are written as profile comments (`pprof -comments`).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "report/model.h"

namespace leakwatch::report {

// The serialized, gzip-compressed profile.  Fails only if serialization or compression
// fails.  Pure function; thread-safe.
[[nodiscard]] Result<std::string> write_pprof(const Report& report);

// The same profile serialized but not compressed (tests decode it directly).
[[nodiscard]] Result<std::string> write_pprof_uncompressed(const Report& report);

// Sample types chosen by the producer instead of the four allocation types above, for
// profiles that are not about allocations (`leakwatch growth`: faulted_bytes/bytes and
// mapped_bytes/bytes).  values[i] are the values of report.stacks[i], one per type; the
// stacks' Estimate fields are then not used.  `sampling_comment`, when set, replaces the
// comment derived from report.sampling.
struct PprofSampleTypes {
  struct Type {
    std::string type, unit;
  };
  std::vector<Type> types;
  std::string default_type;
  std::vector<std::vector<int64_t>> values;
  std::string sampling_comment;
};

// As write_pprof / write_pprof_uncompressed, with the producer's sample types.  Fails when
// values does not hold one row of types.size() values per stack.
[[nodiscard]] Result<std::string> write_pprof(const Report& report,
                                              const PprofSampleTypes& sample_types);
[[nodiscard]] Result<std::string> write_pprof_uncompressed(const Report& report,
                                                           const PprofSampleTypes& sample_types);

// gzip (RFC 1952) of `data`, via zlib.
[[nodiscard]] Result<std::string> gzip_compress(const std::string& data);

}  // namespace leakwatch::report
