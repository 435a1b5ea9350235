// The two protocols, one attempt each.  A Sender is created per sink and used from its
// worker thread only (not thread-safe).
//
//   Pyroscope  POST BASE/push.v1.PusherService/Push   Content-Type: application/proto
//              body: PushRequest{series: [{labels, samples: [{raw_profile, ID}]}]}
//              (the Connect protocol's unary call; X-Scope-OrgID with a tenant)
//   Parca      gRPC parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw
//              WriteRawRequest{series: [{labels: {labels}, samples: [{raw_profile}]}]}
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "sink/profile.h"
#include "sink/sink_config.h"

namespace leakwatch::sink {

struct SendError {
  std::string message;
  bool retryable = true;  // network errors, timeouts, 5xx/429, UNAVAILABLE; not 4xx
};

class Sender {
 public:
  virtual ~Sender() = default;
  // One attempt; nullopt on success.
  virtual std::optional<SendError> send(const Profile& p) = 0;
};

// Fails on a bad endpoint or an unreadable bearer token file.
[[nodiscard]] Result<std::unique_ptr<Sender>> make_pyroscope_sender(const SinkConfig& c);
[[nodiscard]] Result<std::unique_ptr<Sender>> make_parca_sender(const SinkConfig& c);
[[nodiscard]] Result<std::unique_ptr<Sender>> make_sender(const SinkConfig& c);

// The token in `file`, trailing whitespace removed ("" when file is "").
[[nodiscard]] Result<std::string> read_bearer_token(const std::string& file);

}  // namespace leakwatch::sink
