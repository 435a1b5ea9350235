// Small in-process servers that speak the profile stores' protocols, for the sink tests
// (the real stores are not packaged here).  Each decodes what it receives the way the
// store would: the request message, then the gzipped pprof inside it, parsed as a
// perftools.profiles.Profile.
//
//   PyroscopeServer  HTTP  POST /push.v1.PusherService/Push (application/proto PushRequest)
//   ParcaServer      gRPC  parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw
//
// Both listen on 127.0.0.1 (an ephemeral port) and can fail the first N requests
// (retryable: 503 / UNAVAILABLE; or not: 400 / INVALID_ARGUMENT).  Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "profile.pb.h"

namespace leakwatch::testing {

// gzip-decompressed `in` ("" when it is not a complete gzip stream).
std::string gunzip(const std::string& in);

struct ReceivedProfile {
  std::vector<std::pair<std::string, std::string>> labels;
  std::string id;                       // Pyroscope's sample ID ("" for Parca)
  bool gzipped = false;
  bool parsed = false;                  // the bytes decoded as a pprof Profile
  perftools::profiles::Profile profile;
  std::map<std::string, std::string> headers;  // HTTP headers / gRPC metadata, lower case

  std::string label(const std::string& name) const;
  std::vector<std::string> sample_types() const;   // "type/unit"
  std::vector<std::string> function_names() const;
};

class ProfileServer {
 public:
  virtual ~ProfileServer() = default;
  virtual int port() const = 0;
  // Every profile received and decoded so far (requests failed on purpose excluded).
  std::vector<ReceivedProfile> received() const;
  // Waits until `n` profiles arrived; false on timeout.
  bool wait_for(size_t n, double timeout_s) const;
  size_t requests() const { return requests_; }
  // The next `n` requests fail; `retryable` picks 503/UNAVAILABLE or 400/INVALID_ARGUMENT.
  void fail_next(int n, bool retryable = true) {
    fail_left_ = n;
    fail_retryable_ = retryable;
  }

 protected:
  // Counts the request; true when it must fail.
  bool take_failure() {
    ++requests_;
    if (fail_left_ > 0) {
      --fail_left_;
      return true;
    }
    return false;
  }
  void add(ReceivedProfile p);
  std::atomic<int> fail_left_{0};
  std::atomic<bool> fail_retryable_{true};

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<ReceivedProfile> received_;
  std::atomic<size_t> requests_{0};
};

std::unique_ptr<ProfileServer> start_pyroscope_server();
std::unique_ptr<ProfileServer> start_parca_server();

}  // namespace leakwatch::testing
