// Configuration of one profile sink (the agent config's `sinks:` list; deploy/
// leakwatch.example.yaml documents the keys).  Plain data.
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace leakwatch::sink {

struct SinkConfig {
  enum class Kind { kPyroscope, kParca };
  Kind kind = Kind::kPyroscope;
  // Pyroscope: base URL ("http://pyroscope.monitoring:4040"); its push API
  // (/push.v1.PusherService/Push) is used.  Parca: gRPC address "host:port".
  std::string endpoint;
  std::string tenant;              // Pyroscope: X-Scope-OrgID (multi-tenant setups)
  bool insecure = false;           // Parca: plaintext gRPC instead of TLS
  std::string bearer_token_file;   // sent as "Authorization: Bearer ..." when set
  double timeout_s = 10;           // one attempt
  int max_attempts = 5;            // then the profile is dropped (counted)
  double backoff_s = 1;            // before the first retry; doubles, at most 60 s
  size_t queue_size = 16;          // profiles waiting; a full queue drops the oldest (counted)
  std::map<std::string, std::string> labels;  // extra labels on every profile (cluster)
  int line = 0;

  bool operator==(const SinkConfig&) const = default;
  std::string name() const {       // "pyroscope:URL", "parca:ADDR": the metrics' label
    return (kind == Kind::kPyroscope ? "pyroscope:" : "parca:") + endpoint;
  }
};

}  // namespace leakwatch::sink
